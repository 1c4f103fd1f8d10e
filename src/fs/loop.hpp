// The loop that reads FUSE requests and answers them, one at a time, on the calling thread.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif
#include <fuse_lowlevel.h>

namespace secretfs::fs {

// Serves requests until the session is unmounted or a signal ends it; returns 0 then, or a
// negative errno when reading the device failed.
//
// After each request it keeps polling the device for a short while before it sleeps: the
// requests of one open (OPEN, READ, READ at the end, RELEASE) come microseconds apart, and a
// thread that sleeps between them must be woken on another CPU each time, which costs more than
// the request itself. Each poll yields the CPU, so a reader on the same CPU still runs.
int serve_requests(fuse_session* session);

}  // namespace secretfs::fs
