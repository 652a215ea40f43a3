#pragma once
// The io layer: files written whole (this header), .npy arrays, PNG and GIF images. It uses
// nothing of the framework but the public API; pictures made of runs' data live in engine/.
//
// Files written whole or not at all: each writer writes under a temporary name of its own (host,
// process and a random part, so writers on a shared file system never collide), flushes it to
// disk, renames it into place and flushes the folder, so a crash or a power cut leaves either the
// old file or the new one, never a torn one.
#include <cstdint>
#include <filesystem>
#include <string>

namespace difflab {

/// This machine's name as temporary files record it ('-' and '/' replaced).
const std::string& this_host();

/// Whether the process that marked a run running still exists on this machine (a zombie does not).
bool process_alive(std::int64_t pid);

/// "<path>.tmp-<host>-<pid>-<random>": a name no other writer of `path` uses.
std::string temporary_path(const std::string& path);

/// fsync `tmp`, rename it to `path`, fsync the folder. On failure removes `tmp` and throws
/// RunError naming `path`.
void publish_file(const std::string& tmp, const std::string& path);

/// Removes the temporary files under `dir` (recursively) left by processes of this host that no
/// longer run; another host's, or a live process's, are not ours to judge and stay. Returns the
/// number removed.
int remove_dead_temporaries(const std::filesystem::path& dir);

}  // namespace difflab
