// Event: a flag plus a change counter that waiters sleep on.
#include "ipckit/event.hpp"

#include <climits>

#include "ipckit/detail/segment_access.hpp"
#include "wait_source.hpp"

namespace ipckit {

void Event::set() noexcept {
  s_->flag.store(1, std::memory_order_seq_cst);
  detail::publish_change(s_->seq, s_->sleepers, INT_MAX);
}

WaitHandle Event::wait_handle() const {
  auto* s = s_;
  return detail::shared_word_handle(
      s->seq, s->sleepers, detail::ArmKind::Sleepers, [s] { return s->flag.load(std::memory_order_acquire) != 0; },
      keep_, label_, "");
}

bool Event::wait_by(detail::Deadline deadline) {
  return detail::wait_for_change(
      s_->seq, s_->sleepers, [this] { return is_set(); }, deadline, std::chrono::seconds(1), [] {});
}

Event Segment::event(std::string_view name) {
  const auto spec = detail::state_spec<detail::EventState>(ObjectKind::Event, "ipckit::Event", detail::kEventLayout);
  return detail::SegmentAccess::open<Event, detail::EventState>(*this, name, spec);
}

}  // namespace ipckit
