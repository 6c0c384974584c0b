// db_workers — the seed's ThreadLocalDBConnection, per process: each worker
// of an ipckit::ProcessPool opens its own SQLite connection in the pool's
// initializer and keeps it in ipckit::worker_local; tasks insert and query
// through it; the connection is closed when the worker ends (pool shutdown).
//
//   thread_local connection (Python)   ->  ipckit::worker_local<Connection> g_db
//   ThreadPoolExecutor(initializer=…)  ->  ProcessPool({.initializer = open_connection})
//
// All workers write one database file (WAL mode and a busy timeout, so that
// concurrent writers wait for each other instead of failing). A query that
// fails throws DbError in the worker, registered with
// ipckit::register_task_error, so get() rethrows it as DbError.
//
// The claim it checks (it runs as a test): every task's row is in the table
// exactly once, with the pid of the worker that ran it; each worker's own
// count, queried through its connection, matches; DbError arrives as itself.
// Exit code 0 when so, 1 otherwise.
#include <sqlite3.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <ipckit/ipckit.hpp>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo.hpp"

namespace {

struct DbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One SQLite connection; a statement at a time, integers only.
class Connection {
 public:
  explicit Connection(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw DbError("cannot open " + path + ": " + error());
    sqlite3_busy_timeout(db_, 10000);  // a writer waits for the others' transactions
    (void)run("PRAGMA journal_mode=WAL");
    (void)run("PRAGMA synchronous=NORMAL");
  }
  ~Connection() {
    if (ipckit::current_process().pool_worker)
      demo::say("worker %d: closes its connection after %d inserts\n", ::getpid(), inserts);
    sqlite3_close(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` with integer parameters; the first column of its first row (0 if none).
  long long run(const char* sql, std::initializer_list<long long> params = {}) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) throw DbError(std::string(sql) + ": " + error());
    int i = 0;
    for (const long long p : params) sqlite3_bind_int64(st, ++i, p);
    const int rc = sqlite3_step(st);
    const long long out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw DbError(std::string(sql) + ": " + error());
    return out;
  }
  // (column 0, column 1) of every row.
  std::map<long long, long long> pairs(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) throw DbError(std::string(sql) + ": " + error());
    std::map<long long, long long> out;
    while (sqlite3_step(st) == SQLITE_ROW) out[sqlite3_column_int64(st, 0)] = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return out;
  }
  int inserts = 0;

 private:
  std::string error() const { return sqlite3_errmsg(db_); }
  sqlite3* db_ = nullptr;
};

std::string g_path;                           // set before the pool forks its workers
ipckit::worker_local<Connection> g_db{"db"};  // each worker's own connection

void open_connection() { g_db.emplace(g_path); }

int insert_row(int task) {
  (void)g_db->run("INSERT INTO rows(task, pid) VALUES(?, ?)", {task, ::getpid()});
  ++g_db->inserts;
  return ::getpid();
}
struct OwnRows {
  int pid;
  long long rows;
};
// This worker's rows: a query through its connection.
OwnRows count_own_rows(int) { return {::getpid(), g_db->run("SELECT COUNT(*) FROM rows WHERE pid = ?", {::getpid()})}; }
long long bad_query(int) { return g_db->run("SELECT COUNT(*) FROM no_such_table"); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"db_workers — a SQLite connection per worker process (the seed's ThreadLocalDBConnection)"};
  unsigned workers = 4;
  int tasks = 1000;
  app.add_option("--workers", workers, "worker processes")->check(CLI::Range(1, 64));
  app.add_option("--tasks", tasks, "rows to insert, one task each")->check(CLI::Range(1, 1000000));
  CLI11_PARSE(app, argc, argv);
  demo::Verdict verdict;
  const auto expect = [&](bool cond, const char* what) { verdict.expect(cond, what); };
  ipckit::register_task_error<DbError>();  // get() rethrows it as DbError

  char dir_template[] = "/tmp/ipckit-db_workers-XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(dir_template);
  g_path = (dir / "rows.sqlite").string();
  Connection(g_path).run("CREATE TABLE rows(task INTEGER NOT NULL, pid INTEGER NOT NULL)");

  std::map<long long, long long> by_futures;  // pid -> tasks its futures reported
  std::map<long long, long long> own_counts;  // pid -> rows its connection counted
  {
    ipckit::ProcessPool pool({.workers = workers, .initializer = open_connection, .name = "db"});
    demo::say("pool '%s': %u workers, each with its own connection to %s\n", pool.name().c_str(), pool.workers(),
              g_path.c_str());
    const auto t0 = demo::Clock::now();
    std::vector<ipckit::Future<int>> inserted;
    for (int i = 0; i < tasks; ++i) inserted.push_back(pool.submit(insert_row, i));
    for (auto& f : inserted) ++by_futures[f.get()];
    demo::say("%d inserts in %lld ms\n", tasks, demo::ms_since(t0));
    for (unsigned i = 0; i < 4 * workers; ++i) {
      const OwnRows own = pool.submit(count_own_rows, 0).get();
      own_counts[own.pid] = own.rows;
    }
    try {
      (void)pool.submit(bad_query, 0).get();
      expect(false, "a failing query throws");
    } catch (const DbError& e) {
      demo::say("a failing query: DbError (registered, so rethrown as itself): %s\n", e.what());
    }
  }  // shutdown: each worker's connection is closed as the worker ends

  Connection check(g_path);
  const long long rows = check.run("SELECT COUNT(*) FROM rows");
  const long long distinct = check.run("SELECT COUNT(DISTINCT task) FROM rows");
  const long long in_range = check.run("SELECT COUNT(*) FROM rows WHERE task BETWEEN 0 AND ?", {tasks - 1});
  const std::map<long long, long long> by_table = check.pairs("SELECT pid, COUNT(*) FROM rows GROUP BY pid");
  demo::say("table: %lld rows, %lld distinct tasks\n", rows, distinct);
  for (const auto& [pid, n] : by_table) {
    // The counting tasks go to whichever worker is free first: not every worker may have run one.
    const std::string own =
        own_counts.count(pid) != 0 ? ", its connection counted " + std::to_string(own_counts[pid]) : "";
    demo::say("  worker %lld: %lld rows (its futures: %lld%s)\n", pid, n, by_futures[pid], own.c_str());
  }
  expect(rows == tasks && distinct == tasks && in_range == tasks, "every task's row is there exactly once");
  expect(by_table == by_futures, "each row carries the pid of the worker that ran its task");
  for (const auto& [pid, n] : own_counts) expect(by_table.count(pid) != 0 && by_table.at(pid) == n, "own counts");
  std::filesystem::remove_all(dir);
  return verdict.finish();
}
