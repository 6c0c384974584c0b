// tests/pool_test.hpp — what the ProcessPool test files share: the headers
// and the names they all use.
#pragma once

#include <chrono>

#include "ipckit/pool.hpp"
#include "ipckit/value.hpp"
#include "multiprocess.hpp"
#include "test_helpers.hpp"

using namespace std::chrono_literals;
using ipckit::Future;
using ipckit::PoolOptions;
using ipckit::ProcessPool;
using ipckit::Segment;
using ipckit::TaskError;
using ipckit::WorkerDied;
using ipckit::testing::at;
using ipckit::testing::contains;
using ipckit::testing::eventually;
using ipckit::testing::ScopedSegmentName;
using Clock = std::chrono::steady_clock;
