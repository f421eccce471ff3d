// One expansion for the reason lists (drop reasons, pfsync and CARP errors, CARP
// transitions). Each list is an X-macro of (name, text) pairs:
//
//   #define SYNCWALL_FOO_REASONS(X) X(first, "what the first means") X(second, "...")
//   SYNCWALL_REASON_LIST(FooReason, SYNCWALL_FOO_REASONS, foo_reason_count, foo_reason_names,
//                        foo_reason_texts)
//
// declares `enum class FooReason : uint8_t` (one enumerator per name, then count_),
// `foo_reason_count`, the arrays of names and of texts indexed by the enumerator, and
// name_of(FooReason).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#define SYNCWALL_REASON_ENUMERATOR_(name, text) name,
#define SYNCWALL_REASON_NAME_(name, text) #name,
#define SYNCWALL_REASON_TEXT_(name, text) text,

#define SYNCWALL_REASON_LIST(Enum, LIST, count, names, texts)                                      \
    enum class Enum : uint8_t { LIST(SYNCWALL_REASON_ENUMERATOR_) count_ };                        \
    inline constexpr std::size_t count = std::size_t(Enum::count_);                                \
    inline constexpr std::array<std::string_view, count> names = {LIST(SYNCWALL_REASON_NAME_)};    \
    inline constexpr std::array<std::string_view, count> texts = {LIST(SYNCWALL_REASON_TEXT_)};    \
    constexpr std::string_view name_of(Enum e) {                                                   \
        return names[std::size_t(e)];                                                              \
    }
