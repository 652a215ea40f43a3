#pragma once
// libdifflab is built with hidden visibility; what plugins and the runner use is marked here.
#if defined(_WIN32)
#define DIFFLAB_API
#else
#define DIFFLAB_API __attribute__((visibility("default")))
#endif
