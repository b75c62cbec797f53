#pragma once
// Status and Result<T>: the error channel of every fallible operation in Engram.
// Expected failures (bad input, I/O errors, a busy store) are values, never exceptions; the vtab
// guard maps a Status to an SQLite result code and message.
#include <optional>
#include <string>
#include <utility>

namespace engram {

enum class Code {
    kOk = 0,
    kInvalidArgument, // bad input: names the culprit
    kNotFound,
    kAlreadyExists, // duplicate id
    kBusy,          // store in use by another process
    kIoError,
    kNoSpace,
    kCorruption,
    kInternal,
};

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok() { return {}; }
    static Status invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
    static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
    static Status exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
    static Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
    static Status io(std::string m) { return {Code::kIoError, std::move(m)}; }
    static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
    static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

    bool is_ok() const noexcept { return code_ == Code::kOk; }
    explicit operator bool() const noexcept { return is_ok(); }
    Code code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }

private:
    Code code_ = Code::kOk;
    std::string message_;
};

// A value or a non-ok Status.
template <typename T> class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
    Result(Status status) : status_(std::move(status)) {} // NOLINT(google-explicit-constructor)

    bool is_ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return is_ok(); }
    const Status& status() const noexcept { return status_; }
    T& value() & { return *value_; }
    const T& value() const& { return *value_; }
    T&& value() && { return std::move(*value_); }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    T& operator*() { return *value_; }

private:
    std::optional<T> value_;
    Status status_;
};

} // namespace engram

#define ENGRAM_TRY(expr)                                                                           \
    do {                                                                                           \
        ::engram::Status engram_try_status_ = (expr);                                              \
        if (!engram_try_status_.is_ok()) {                                                         \
            return engram_try_status_;                                                             \
        }                                                                                          \
    } while (0)
