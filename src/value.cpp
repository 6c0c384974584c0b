// Value and Array (value.hpp): finding or creating their data, and checking
// how every process guards it (its own RLock, a named Lock/RLock, or none).
#include "ipckit/value.hpp"

#include <cstring>
#include <string>

#include "segment_impl.hpp"

namespace ipckit {

using detail::read_once;

namespace {

// "a raw value without a lock (raw_value<T>)", for mismatch messages.
std::string guard_words(ObjectKind kind, detail::Guard guard) {
  const std::string noun = kind == ObjectKind::Value ? "value" : "array";
  switch (guard) {
    case detail::Guard::Raw:
      return "a raw " + noun + " without a lock (raw_" + noun + "<T>)";
    case detail::Guard::Bound:
      return "a " + noun + " bound to a named lock (" + noun + "<T>(..., lock))";
    case detail::Guard::Own:
      break;
  }
  return "a " + noun + " with its own lock (" + noun + "<T>)";
}

// Written into a new value or array before it is published.
struct DataInit {
  const detail::DataSpec* spec;
  std::uint64_t lock_offset;
};

void init_data(void* body, const void* arg) {
  const auto& init = *static_cast<const DataInit*>(arg);
  const detail::DataSpec& d = *init.spec;
  char* b = static_cast<char*>(body);
  if (d.guard == detail::Guard::Bound) reinterpret_cast<detail::BoundHeader*>(b)->lock_offset = init.lock_offset;
  if (d.kind == ObjectKind::Array && d.guard != detail::Guard::Raw)
    *reinterpret_cast<std::uint64_t*>(b + sizeof(detail::LockState)) = d.count;
  if (d.initial != nullptr) std::memcpy(b + detail::data_offset(d.kind, d.guard), d.initial, d.elem_size * d.count);
}

}  // namespace

// "lock 'A' in segment 'demo'" for the Lock/RLock at `offset`, for messages.
std::string Segment::lock_at(std::uint64_t offset) const {
  for (const ObjectInfo& o : objects())
    if (o.offset == offset && (o.kind == ObjectKind::Lock || o.kind == ObjectKind::RLock))
      return label_of(o.kind, o.name).text;
  return "the object at offset " + std::to_string(offset) + " of segment '" + impl_->name() + "'";
}

void* Segment::bind_data(std::string_view name, const detail::DataSpec& d) {
  const detail::Label who = label_of(d.kind, name);
  if (d.count == 0) detail::raise<InvalidArgument>(who, "an array needs at least one element", "give it one or more");
  if (d.count > (std::uint64_t{1} << 40) / d.elem_size)
    detail::raise<InvalidArgument>(who, std::to_string(d.count) + " elements is too many for any segment", "use fewer");
  std::uint64_t lock_offset = 0;
  if (d.guard == detail::Guard::Bound) {
    const auto at = offset_of(d.lock);
    if (!at)
      detail::raise<InvalidArgument>(who, "its lock must live in the same segment",
                                     "open the lock from '" + impl_->name() + "'");
    lock_offset = *at;
  }
  // Another guard than the one it was created with: say so plainly (the
  // type check below would only show the prefixed type names).
  for (const ObjectInfo& o : objects()) {
    if (o.name != name || o.kind != d.kind) continue;
    const detail::Guard was = detail::guard_of(o.type_name);
    if (was != d.guard)
      detail::raise_about<TypeMismatch>(who, "is " + guard_words(d.kind, was) + ", not " +
                                                 guard_words(d.kind, d.guard) + "; open it as it was created");
  }
  const std::string type_name = std::string(detail::guard_prefix(d.guard)) + d.type_name;
  detail::ObjectSpec spec{d.kind,
                          type_name.c_str(),
                          d.elem_size,
                          d.elem_align,
                          d.count,
                          d.kind == ObjectKind::Value ? detail::kValueLayout : detail::kArrayLayout,
                          detail::data_offset(d.kind, d.guard) + std::uint64_t{d.elem_size} * d.count};
  const DataInit init{&d, lock_offset};
  spec.init = init_data;
  spec.init_arg = &init;
  void* body = find_or_create(name, spec);
  if (d.guard == detail::Guard::Bound) {
    // Every process must bind it to the same lock (like a condition).
    const std::uint64_t bound = detail::read_once(static_cast<const detail::BoundHeader*>(body)->lock_offset);
    if (bound != lock_offset)
      detail::raise_about<TypeMismatch>(who, "is bound to " + lock_at(bound) + ", not to " + lock_at(lock_offset) +
                                                 "; bind it to the same lock in every process");
  }
  return body;
}

}  // namespace ipckit
