// src/cli/kinds.hpp — the one table of object kinds: for each, which lock
// the LOCK HOLDER column shows and how its snapshot is rendered as text
// (tables.hpp) and as JSON (json.hpp).
//
// A new kind of object is one row of that table (kinds.cpp), once the
// library's Segment::inspect() returns a snapshot of it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "ipckit/inspect.hpp"
#include "json.hpp"

namespace ipckit::cli {

struct KindView {
  ObjectKind kind;
  // The object's own lock (a Lock's self, a Value's RLock, a priority
  // queue's lock), or none: the LOCK HOLDER column and "lock" in JSON.
  std::optional<LockStats> (*lock)(const ObjectSnapshot& snap);
  // The VALUE / STATE column, escaped; "" shows as "-".
  std::string (*text)(const ObjectSnapshot& snap, std::size_t limit);
  // Adds "value", "values", "raw_hex" or "state" to the object's JSON.
  void (*json)(Json& object, const ObjectSnapshot& snap, std::size_t limit);
};

// The row of `kind`; a kind without one shows no lock and no state.
const KindView& kind_view(ObjectKind kind);

// "value", "joinablequeue": the library's name of the kind, in lower case.
std::string kind_name(ObjectKind kind);

}  // namespace ipckit::cli
