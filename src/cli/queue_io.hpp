// src/cli/queue_io.hpp — `ipckit put SEG QUEUE TEXT` and `ipckit get SEG QUEUE`:
// string and byte queues from shell scripts.
//
// The queue must exist (neither command creates one) and hold strings
// (Queue<std::string>, JoinableQueue<std::string>) or bytes (ByteQueue); a
// queue of another T, or a priority or LIFO queue, is refused with a message
// naming it and its type. It is opened with the options it was created
// with, read from its header.
//
//   put [--timeout S]  blocks while the queue is full; with --timeout, exit
//                      status 4 if it stayed full that long.
//   get [--timeout S] [--count N] [--json]
//                      takes N items (default 1; 0: until the queue is
//                      closed or, with --timeout, empty for S seconds), one
//                      per line with control characters escaped, each
//                      printed as soon as it is taken. Exit status 3 if
//                      fewer than N came (empty until --timeout, or closed).
//                      A joinable queue's items are marked done once printed.
//                      --json prints one document at the end:
//                      {"segment", "queue", "type": "string"|"bytes",
//                       "encoding": "utf-8"|"base64", "items": [...],
//                       "complete": bool}; a string item that is not UTF-8
//                      has U+FFFD in place of its invalid bytes; byte items
//                      are base64 (RFC 4648, with padding).
#pragma once

#include <string>
#include <string_view>

#include "command.hpp"

namespace ipckit::cli {

std::string base64(std::string_view bytes);

Command add_put(CLI::App& app);
Command add_get(CLI::App& app);

}  // namespace ipckit::cli
