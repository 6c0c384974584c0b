// Event: a flag plus a change counter that waiters sleep on.
#include "ipckit/event.hpp"

#include <climits>

#include "ipckit/detail/lock_state.hpp"

namespace ipckit {

void Event::set() noexcept {
  s_->flag.store(1, std::memory_order_seq_cst);
  detail::publish_change(s_->seq, s_->sleepers, INT_MAX);
}

bool Event::wait_by(detail::Deadline deadline) {
  return detail::wait_for_change(s_->seq, s_->sleepers, [this] { return is_set(); }, deadline,
                                 std::chrono::seconds(1), [] {});
}

}  // namespace ipckit
