#include "storage/store.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

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

} // namespace
} // namespace engram::storage
