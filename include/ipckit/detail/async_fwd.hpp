// ipckit/detail/async_fwd.hpp — the hook the objects' async_ members
// (async_get, async_put, async_wait, async_acquire) forward through.
//
// The members are templates that name detail::AsyncOps<Object>, which only
// ipckit/asio.hpp defines: a program that never includes ipckit/asio.hpp
// never instantiates them, compiles no Boost header and pays nothing. One
// that calls an async_ member without including ipckit/asio.hpp gets
// "incomplete type 'ipckit::detail::AsyncOps<...>'": include it.
#pragma once

namespace ipckit::detail {

template <class Object>
struct AsyncOps;  // ipckit/asio.hpp

// AsyncOps<Object> made dependent on the member's arguments, so that a
// member of a class that is not a template is only checked when called.
template <class T, class...>
struct DependOn {
  using type = T;
};
template <class Object, class... Args>
using AsyncOpsFor = AsyncOps<typename DependOn<Object, Args...>::type>;

}  // namespace ipckit::detail
