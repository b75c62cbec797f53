#include "storage/store.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "storage/codec.hpp"

namespace engram::storage {
namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/engram-store-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/s.engram";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_, path_;
};

std::string record(const std::string& what) {
    engine::EpisodeRecord r;
    r.episode.what = what;
    r.episode.embedding = {1.0F, 2.0F};
    return encode_record(r);
}

TEST_F(StoreTest, BatchIsAtomicAndSurvivesReopen) {
    {
        auto s = Store::open(path_, false);
        ASSERT_TRUE(s.is_ok()) << s.status().message();
        Batch b = (*s)->batch();
        for (int i = 0; i < 100; ++i) {
            b.put_episode("e" + std::to_string(i), record("w" + std::to_string(i)));
        }
        b.put_meta("dim", "2");
        EXPECT_EQ(b.size(), 101U);
        // Nothing is visible before write().
        std::string v;
        EXPECT_EQ((*s)->get_episode("e1", &v).code(), Code::kNotFound);
        ASSERT_TRUE((*s)->write(b, SyncMode::kFull).is_ok());
    }
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    std::string v;
    ASSERT_TRUE((*s)->get_episode("e42", &v).is_ok());
    EXPECT_EQ(decode_record("e42", v)->episode.what, "w42");
    EXPECT_EQ((*s)->get_meta("dim")->value(), "2");
    EXPECT_FALSE((*s)->get_meta("nope")->has_value());
    int n = 0;
    auto c = (*s)->episodes();
    std::string last;
    for (c->seek_first(); c->valid(); c->next()) {
        EXPECT_LT(last, std::string(c->id())); // id order
        last = std::string(c->id());
        ++n;
    }
    EXPECT_TRUE(c->status().is_ok());
    EXPECT_EQ(n, 100);
}

TEST_F(StoreTest, DeletesApplyInTheSameBatch) {
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    {
        Batch b = (*s)->batch();
        b.put_episode("a", record("a"));
        b.put_episode("b", record("b"));
        ASSERT_TRUE((*s)->write(b, SyncMode::kNormal).is_ok());
    }
    Batch b = (*s)->batch();
    b.delete_episode("a");
    b.put_episode("c", record("c"));
    ASSERT_TRUE((*s)->write(b, SyncMode::kOff).is_ok());
    std::string v;
    EXPECT_EQ((*s)->get_episode("a", &v).code(), Code::kNotFound);
    EXPECT_TRUE((*s)->get_episode("c", &v).is_ok());
}

TEST_F(StoreTest, SecondProcessGetsBusy) {
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        auto other = Store::open(path_, false);
        const bool busy = !other.is_ok() && other.status().code() == Code::kBusy &&
                          other.status().message().find("in use") != std::string::npos;
        _exit(busy ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the child did not get kBusy";
}

TEST_F(StoreTest, InMemoryStoreLeavesNoFiles) {
    {
        auto s = Store::open(path_, true);
        ASSERT_TRUE(s.is_ok()) << s.status().message();
        Batch b = (*s)->batch();
        b.put_episode("a", record("a"));
        ASSERT_TRUE((*s)->write(b, SyncMode::kFull).is_ok());
        std::string v;
        EXPECT_TRUE((*s)->get_episode("a", &v).is_ok());
    }
    EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(StoreTest, DestroyRemovesFiles) {
    { ASSERT_TRUE(Store::open(path_, false).is_ok()); }
    EXPECT_TRUE(std::filesystem::exists(path_));
    ASSERT_TRUE(Store::destroy(path_).is_ok());
    EXPECT_FALSE(std::filesystem::exists(path_ + "/CURRENT"));
}

std::string value_of(Store& s, const std::string& id, bool latest = false) {
    std::string v;
    const Status st = latest ? s.get_episode_latest(id, &v) : s.get_episode(id, &v);
    if (st.code() == Code::kNotFound) {
        return "<absent>";
    }
    EXPECT_TRUE(st.is_ok()) << st.message();
    return v;
}

TEST_F(StoreTest, StagingFindsLatestOpsByIdAndIteratesInOrder) {
    {
        auto s = Store::open(path_, false);
        ASSERT_TRUE(s.is_ok());
        Store& db = **s;
        Batch b = db.batch();
        b.put_staged(7, 0, "b", "b0", true);
        b.put_staged(7, 1, "a", "a1", true);
        b.put_staged(7, 2, "b", "b2", false);
        b.put_staged(7, 3, "ab", "ab3", true);
        b.put_staged(8, 0, "a", "other", true); // another transaction
        ASSERT_TRUE(db.write_staging(b).is_ok());

        auto latest = db.get_staged(7, "b");
        ASSERT_TRUE(latest.is_ok());
        ASSERT_TRUE(latest->has_value());
        EXPECT_EQ((*latest)->first, 2U);
        EXPECT_EQ((*latest)->second, "b2");
        latest = db.get_staged(7, "a");
        ASSERT_TRUE(latest->has_value());
        EXPECT_EQ((*latest)->second, "a1"); // not "ab3" (a longer id sharing the prefix)
        EXPECT_FALSE(db.get_staged(7, "c")->has_value());
        EXPECT_EQ((*db.get_staged(8, "a"))->second, "other");

        std::string ids;
        for (auto c = db.staged_ids(7); c->valid(); c->next()) {
            ids += std::string(c->id()) + (c->value()[8] != '\0' ? "+ " : "- ");
        }
        EXPECT_EQ(ids, "a+ ab+ b+ b- "); // id order; per id, by seq; the flag kept
        std::string ops;
        for (auto c = db.staged_ops(7, 1); c->valid(); c->next()) {
            ops += std::string(c->value()) + " ";
        }
        EXPECT_EQ(ops, "a1 b2 ab3 ");

        Batch d = db.batch();
        d.delete_staged(7, 2, "b");
        ASSERT_TRUE(db.write_staging(d).is_ok());
        EXPECT_EQ((*db.get_staged(7, "b"))->second, "b0");

        ASSERT_TRUE(db.drop_staged(7).is_ok());
        EXPECT_FALSE(db.get_staged(7, "a")->has_value());
        EXPECT_FALSE(db.staged_ids(7)->valid());
        EXPECT_TRUE(db.get_staged(8, "a")->has_value()); // untouched
    }
    auto s = Store::open(path_, false); // a new process: what was staged is gone
    ASSERT_TRUE(s.is_ok());
    EXPECT_FALSE((*s)->get_staged(8, "a")->has_value());
}

// Child process: writes 2 x 200 episodes without the WAL from two threads at once, flushes
// them when `flush`, then dies without closing the store (as a killed process would).
[[noreturn]] void write_unlogged_and_die(const std::string& path, bool flush) {
    auto s = Store::open(path, false);
    if (!s.is_ok()) {
        _exit(2);
    }
    Store& db = **s;
    std::atomic<int> failures{0};
    auto writer = [&](int part) {
        Batch b = db.batch();
        for (int i = 0; i < 200; ++i) {
            b.put_episode("p" + std::to_string(part) + "-" + std::to_string(i), record("x"));
        }
        failures += db.write_unlogged(b).is_ok() ? 0 : 1;
    };
    std::thread a(writer, 0);
    std::thread b(writer, 1);
    a.join();
    b.join();
    if (failures.load() != 0 || (flush && !db.flush_episodes().is_ok())) {
        _exit(3);
    }
    _exit(0);
}

std::size_t count_episodes(Store& db) {
    std::size_t n = 0;
    auto c = db.episodes();
    for (c->seek_first(); c->valid(); c->next()) {
        ++n;
    }
    return n;
}

// The child runs in a fresh process image (exec of this binary; see the hook below): a forked
// child would inherit RocksDB's background thread pool without its threads.
const bool kUnloggedChild = [] {
    const char* path = std::getenv("ENGRAM_UNLOGGED_CHILD");
    if (path != nullptr) {
        write_unlogged_and_die(path, std::getenv("ENGRAM_UNLOGGED_FLUSH") != nullptr);
    }
    return false;
}();

TEST_F(StoreTest, UnloggedWritesAreDurableOnlyOnceFlushed) {
    for (const bool flush : {false, true}) {
        std::filesystem::remove_all(path_);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            setenv("ENGRAM_UNLOGGED_CHILD", path_.c_str(), 1);
            if (flush) {
                setenv("ENGRAM_UNLOGGED_FLUSH", "1", 1);
            }
            execl("/proc/self/exe", "engram_unit_tests", "--gtest_filter=-*", nullptr);
            _exit(4);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        auto s = Store::open(path_, false);
        ASSERT_TRUE(s.is_ok()) << s.status().message();
        // Without the WAL, only the flush makes the writes survive the process.
        EXPECT_EQ(count_episodes(**s), flush ? 400U : 0U) << "flush=" << flush;
    }
}

TEST_F(StoreTest, ConcurrentUnloggedWritesAllLand) {
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    Store& db = **s;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int part = 0; part < 4; ++part) {
        threads.emplace_back([&, part] {
            for (int round = 0; round < 5; ++round) {
                Batch b = db.batch();
                for (int i = 0; i < 100; ++i) {
                    b.put_episode("p" + std::to_string(part) + "-" + std::to_string(round) + "-" +
                                      std::to_string(i),
                                  record("x"));
                }
                failures += db.write_unlogged(b).is_ok() ? 0 : 1;
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    EXPECT_EQ(failures.load(), 0);
    ASSERT_TRUE(db.flush_episodes().is_ok());
    EXPECT_EQ(count_episodes(db), 2000U);
}

std::size_t spill_files(const std::string& dir) {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        n += name.starts_with("staging-") && name.ends_with(".spill") ? 1 : 0;
    }
    return n;
}

TEST_F(StoreTest, StagedBytesLiveInOneSpillFilePerTransactionUntilDropped) {
    {
        auto s = Store::open(path_, false);
        ASSERT_TRUE(s.is_ok());
        Store& db = **s;
        const std::string big(100000, 'x');
        for (int round = 0; round < 3; ++round) { // several batches append to one file
            Batch b = db.batch();
            b.put_staged(5, round, "id" + std::to_string(round), big + std::to_string(round), true);
            ASSERT_TRUE(db.write_staging(b).is_ok());
        }
        EXPECT_EQ(spill_files(path_), 1U);
        EXPECT_EQ((*db.get_staged(5, "id1"))->second, big + "1");
        // Re-staging a seq (an update of a staged row) points it at the new bytes.
        Batch again = db.batch();
        again.put_staged(5, 1, "id1", "new", true);
        ASSERT_TRUE(db.write_staging(again).is_ok());
        std::string ops;
        for (auto c = db.staged_ops(5, 0); c->valid(); c->next()) {
            ops += std::string(c->value().substr(c->value().size() - 3)) + " ";
            EXPECT_TRUE(c->status().is_ok());
        }
        EXPECT_EQ(ops, "xx0 new xx2 ");
        // A cursor keeps the file readable after the drop; the file goes with the cursor.
        auto open_cursor = db.staged_ops(5, 2);
        ASSERT_TRUE(db.drop_staged(5).is_ok());
        ASSERT_TRUE(open_cursor->valid());
        EXPECT_EQ(open_cursor->value(), big + "2");
        open_cursor.reset();
        EXPECT_EQ(spill_files(path_), 0U);
        // A file a crashed process left behind.
        Batch left = db.batch();
        left.put_staged(6, 0, "z", "zz", true);
        ASSERT_TRUE(db.write_staging(left).is_ok());
        std::filesystem::copy_file(path_ + "/staging-6.spill", path_ + "/staging-77.spill");
    }
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(spill_files(path_), 0U);
}

TEST_F(StoreTest, InMemoryStoreStagesToo) {
    auto s = Store::open(path_, true);
    ASSERT_TRUE(s.is_ok());
    Batch b = (*s)->batch();
    b.put_staged(1, 0, "a", "bytes of a", true);
    ASSERT_TRUE((*s)->write_staging(b).is_ok());
    EXPECT_EQ((*(*s)->get_staged(1, "a"))->second, "bytes of a");
    EXPECT_FALSE(std::filesystem::exists(path_)); // nothing on disk
    EXPECT_TRUE((*s)->drop_staged(1).is_ok());
    EXPECT_FALSE((*s)->get_staged(1, "a")->has_value());
}

// Writes a publish in two parts over {keep: "k0", gone: "g0"}: part 1 overwrites keep and adds
// n1, part 2 deletes gone, overwrites n1 and adds n2. Undo records hold the previous values.
void publish_two_parts(Store& db, bool finish) {
    Batch before = db.batch();
    before.put_episode("keep", "k0");
    before.put_episode("gone", "g0");
    ASSERT_TRUE(db.write(before, SyncMode::kFull).is_ok());
    db.hold_view(true);
    Batch p1 = db.batch();
    p1.begin_publish();
    p1.put_episode("keep", "k1");
    p1.put_undo(0, "keep", std::string_view("k0"));
    p1.put_episode("n1", "x1");
    p1.put_undo(1, "n1", std::nullopt);
    ASSERT_TRUE(db.write(p1, SyncMode::kNormal).is_ok());
    Batch p2 = db.batch();
    p2.delete_episode("gone");
    p2.put_undo(2, "gone", std::string_view("g0"));
    p2.put_episode("n1", "x2");
    p2.put_undo(3, "n1", std::string_view("x1"));
    p2.put_episode("n2", "y2");
    p2.put_undo(4, "n2", std::nullopt);
    ASSERT_TRUE(db.write(p2, SyncMode::kNormal).is_ok());
    // Readers still see the state before the publish; the writer sees its own writes.
    EXPECT_EQ(value_of(db, "keep"), "k0");
    EXPECT_EQ(value_of(db, "n1"), "<absent>");
    EXPECT_EQ(value_of(db, "gone"), "g0");
    EXPECT_EQ(value_of(db, "n1", true), "x2");
    int n = 0;
    auto c = db.episodes();
    for (c->seek_first(); c->valid(); c->next()) {
        ++n;
    }
    EXPECT_EQ(n, 2);
    if (finish) {
        Batch end = db.batch();
        end.end_publish();
        ASSERT_TRUE(db.write(end, SyncMode::kFull).is_ok());
        db.hold_view(false);
        EXPECT_EQ(value_of(db, "n1"), "x2");
    }
}

TEST_F(StoreTest, UnfinishedPublishIsUndoneAtOpen) {
    {
        auto s = Store::open(path_, false);
        ASSERT_TRUE(s.is_ok());
        publish_two_parts(**s, false); // "crashes" before the end
    }
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    EXPECT_EQ(value_of(**s, "keep"), "k0");
    EXPECT_EQ(value_of(**s, "gone"), "g0");
    EXPECT_EQ(value_of(**s, "n1"), "<absent>");
    EXPECT_EQ(value_of(**s, "n2"), "<absent>");
    EXPECT_FALSE((*s)->get_meta("publishing")->has_value());
}

TEST_F(StoreTest, FinishedPublishStaysAndLeavesNoUndoRecords) {
    {
        auto s = Store::open(path_, false);
        ASSERT_TRUE(s.is_ok());
        publish_two_parts(**s, true);
    }
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(value_of(**s, "keep"), "k1");
    EXPECT_EQ(value_of(**s, "gone"), "<absent>");
    EXPECT_EQ(value_of(**s, "n1"), "x2");
    EXPECT_EQ(value_of(**s, "n2"), "y2");
    EXPECT_FALSE((*s)->get_meta("undo/")->has_value());
    EXPECT_FALSE((*s)->get_meta("publishing")->has_value());
}

TEST_F(StoreTest, FailedPublishIsUndoneInProcess) {
    auto s = Store::open(path_, false);
    ASSERT_TRUE(s.is_ok());
    publish_two_parts(**s, false);
    ASSERT_TRUE((*s)->undo_unfinished_publish().is_ok());
    (*s)->hold_view(false);
    EXPECT_EQ(value_of(**s, "keep"), "k0");
    EXPECT_EQ(value_of(**s, "n1"), "<absent>");
    EXPECT_EQ(value_of(**s, "gone"), "g0");
}

} // namespace
} // namespace engram::storage
