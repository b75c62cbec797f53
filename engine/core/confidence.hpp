#pragma once
// Confidence and Activation: the two probabilities of the cognitive model (DESIGN §2).
// Both are values in [0, 1]; constructors clamp (NaN becomes 0). Immutable, trivially copyable.
#include <cmath>

namespace engram::engine {

class Confidence {
public:
    constexpr Confidence() = default;
    explicit Confidence(double v) noexcept : value_(clamp(v)) {}

    static Confidence exact(double v) noexcept { return Confidence(v); }
    double value() const noexcept { return value_; }

    // a·b
    Confidence and_(Confidence o) const noexcept { return Confidence(value_ * o.value_); }
    // a + b − a·b
    Confidence or_(Confidence o) const noexcept {
        return Confidence(value_ + o.value_ - value_ * o.value_);
    }
    // 1 − a
    Confidence not_() const noexcept { return Confidence(1.0 - value_); }
    // (a·wa + b·wb) / (wa + wb); 0.5 when the weights sum to 0
    Confidence combine_weighted(Confidence o, double wa, double wb) const noexcept {
        const double w = wa + wb;
        if (w == 0.0) {
            return Confidence(0.5);
        }
        return Confidence((value_ * wa + o.value_ * wb) / w);
    }
    // Overconfidence correction: a > 0.8 → 0.85a; 0.6 < a ≤ 0.8 → 0.9a; otherwise a.
    Confidence calibrate() const noexcept {
        if (value_ > 0.8) {
            return Confidence(value_ * 0.85);
        }
        if (value_ > 0.6) {
            return Confidence(value_ * 0.9);
        }
        return *this;
    }
    // a · e^(−rate·hops)
    Confidence decayed(double rate, double hops) const noexcept {
        return Confidence(value_ * std::exp(-rate * hops));
    }

    friend bool operator==(Confidence a, Confidence b) noexcept { return a.value_ == b.value_; }

private:
    static double clamp(double v) noexcept {
        if (!(v > 0.0)) {
            return 0.0; // also NaN
        }
        return v > 1.0 ? 1.0 : v;
    }
    double value_ = 0.0;
};

class Activation {
public:
    constexpr Activation() = default;
    explicit Activation(double v) noexcept : value_(Confidence(v).value()) {}
    double value() const noexcept { return value_; }
    // A store "succeeded" when its activation is above one half.
    bool successful() const noexcept { return value_ > 0.5; }
    // A store is "degraded" when pressure (or a weak encoding) left it below 0.8.
    bool degraded() const noexcept { return value_ < 0.8; }

private:
    double value_ = 0.0;
};

// Store activation = encoding confidence × (1 − 0.5 × pressure), clamped; pressure in [0, 1].
inline Activation store_activation(Confidence encoding, double pressure) noexcept {
    return Activation(encoding.value() * (1.0 - 0.5 * pressure));
}

} // namespace engram::engine
