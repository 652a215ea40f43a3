#pragma once
// Inside the store: its connection (RunStore::Impl) and one use of a cached prepared statement,
// shared by schema.cpp, run_store.cpp and store_reads.cpp. SQLite stays behind this header.
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>

#include "store/run_store.hpp"

namespace difflab {

struct RunStore::Impl {
  std::string path;
  sqlite3* db = nullptr;
  int transaction_depth = 0;
  // Prepared once per SQL text and reused: add_losses and reports run the same statements often.
  std::unordered_map<const char*, sqlite3_stmt*> statements;

  ~Impl();

  [[noreturn]] void fail(int rc, const std::string& what) const;
  // Setup statements map a foreign or damaged file to InputError: the user gave the wrong path.
  void exec_setup(const std::string& sql);
  void exec(const char* sql);
  std::int64_t pragma_int(const char* name);
  sqlite3_stmt* prepare(const char* sql);
  // schema.cpp: checks that the file is a store this build reads; a writer migrates it.
  void open_schema(RunStore::Access access);
  void migrate();
};

// One use of a cached prepared statement: binds by position (1-based), resets on destruction.
// Statements are cached by the address of their text, so each SQL string is a named constant.
class Statement {
 public:
  Statement(RunStore::Impl& impl, const char* sql)
      : impl_(impl), sql_(sql), stmt_(impl.prepare(sql)) {}
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, double value) {
    check(sqlite3_bind_double(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  // An empty timestamp is stored as NULL ("not yet").
  Statement& bind_or_null(int index, const std::string& value) {
    if (value.empty()) {
      check(sqlite3_bind_null(stmt_, index));
      return *this;
    }
    return bind(index, value);
  }
  // A count that is not known (0) is stored as NULL; reading NULL as an integer gives 0 again.
  Statement& bind_or_null(int index, std::int64_t value) {
    if (value <= 0) {
      check(sqlite3_bind_null(stmt_, index));
      return *this;
    }
    return bind(index, value);
  }

  /// Advances to the next row; false when done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    impl_.fail(rc, std::string("running '") + sql_ + "'");
  }
  /// Runs a statement that returns no rows; the number of rows it changed.
  int run() {
    while (step()) {
    }
    return sqlite3_changes(impl_.db);
  }
  sqlite3_stmt* handle() const { return stmt_; }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL)
      return std::numeric_limits<double>::quiet_NaN();
    return sqlite3_column_double(stmt_, column);
  }
  std::string text(int column) const {
    const auto* data = sqlite3_column_text(stmt_, column);
    if (!data) return {};
    return std::string(reinterpret_cast<const char*>(data),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) impl_.fail(rc, std::string("binding a parameter of '") + sql_ + "'");
  }

  RunStore::Impl& impl_;
  const char* sql_;
  sqlite3_stmt* stmt_;
};

}  // namespace difflab
