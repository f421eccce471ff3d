// show states a page at a time: the daemon's pages over a table of 100 000 states (bounded
// in size and in slots visited, resumable by cursor, each state once) and syncwallctl's walk
// through them.
#include "control/mgmt/state_pages.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <vector>

using namespace syncwall;
using namespace syncwall::ctl;

namespace {

// A state table as the pager sees it: slots, some live, visited in order.
struct FakeTable {
    std::vector<std::optional<dp::State>> slots;
    uint64_t visited = 0; // slots the walks have looked at

    // `live` states spread over `n` slots (every other slot from `live` on is empty).
    FakeTable(uint32_t n, uint32_t live) : slots(n) {
        for (uint32_t i = 0, made = 0; i < n && made < live; i++) {
            if (i % 3 == 1) continue; // holes, as a hash table has
            dp::State s;
            s.id = 1000 + made;
            s.key.af = 4;
            s.key.proto = made % 2 == 0 ? 6 : 17;
            s.key.port[0] = uint16_t(made % 50000);
            s.key.port[1] = 80;
            slots[i] = s;
            made++;
        }
    }

    SlotWalk walk() {
        return [this](uint32_t first, uint32_t count, const auto &visit) -> uint32_t {
            const uint32_t end =
                uint32_t(std::min<uint64_t>(uint64_t(first) + count, slots.size()));
            for (uint32_t i = first; i < end; i++) {
                visited++;
                if (slots[i] && !visit(i, *slots[i])) return i;
            }
            return end;
        };
    }

    // What the daemon answers to one show states request.
    Json page(const StateFilter &filter) {
        return state_page(filter, uint32_t(slots.size()), walk(), [](uint32_t, const dp::State &s) {
            return Json{{"id", s.id}};
        });
    }
};

StateFilter with(std::optional<uint64_t> limit, std::optional<uint64_t> cursor) {
    StateFilter f;
    f.limit = limit;
    f.cursor = cursor;
    return f;
}

// What the daemon answers to syncwallctl's request with `args` (through the real parser).
Json answer(FakeTable &table, const Json &args) {
    const ParsedRequest p = parse_request(request_line(Command::show_states, args));
    INFO(p.error);
    REQUIRE(p.request);
    return table.page(p.request->filter);
}

} // namespace

TEST_CASE("show states without a limit answers one bounded page of a large table",
          "[mgmt][pages]") {
    FakeTable table(150000, 100000);
    const Json page = table.page({});
    REQUIRE(page.at("states").size() == default_state_page);
    CHECK(page.at("truncated") == true);
    // The next page starts at the first matching state not listed.
    const uint64_t last_listed = page.at("states").back().at("id").get<uint64_t>() - 1000;
    CHECK(page.at("next").get<uint64_t>() > last_listed);
    CHECK(table.slots[page.at("next").get<uint64_t>()]->id ==
          page.at("states").back().at("id").get<uint64_t>() + 1);
    // The walk stopped there instead of going through the table.
    CHECK(table.visited < 2 * default_state_page);
}

TEST_CASE("a limit above the maximum page is cut to the maximum", "[mgmt][pages]") {
    FakeTable table(150000, 100000);
    CHECK(table.page(with(1000000, std::nullopt)).at("states").size() == max_state_page);
    CHECK(table.page(with(7, std::nullopt)).at("states").size() == 7);
    CHECK(table.page(with(0, std::nullopt)).at("states").empty());
}

TEST_CASE("one page visits a bounded number of slots, however few states match", "[mgmt][pages]") {
    FakeTable table(200000, 100000);
    StateFilter none;
    none.port = 65000; // matches nothing
    const Json first = table.page(none);
    CHECK(first.at("states").empty());
    CHECK(first.at("next") == state_page_scan);
    CHECK(table.visited == state_page_scan);
    // Following the cursor reaches the end in a few bounded steps.
    Json page = first;
    int pages = 1;
    while (!page.at("next").is_null()) {
        table.visited = 0;
        none.cursor = page.at("next").get<uint64_t>();
        page = table.page(none);
        CHECK(table.visited <= state_page_scan);
        pages++;
    }
    CHECK(pages == int((200000 + state_page_scan - 1) / state_page_scan));
    CHECK(page.at("truncated") == false);
}

TEST_CASE("following the cursor lists every matching state exactly once", "[mgmt][pages]") {
    FakeTable table(150000, 100000);
    for (const std::optional<uint8_t> proto :
         {std::optional<uint8_t>(), std::optional<uint8_t>(17)}) {
        std::set<uint64_t> want;
        for (const auto &s : table.slots)
            if (s && (!proto || s->key.proto == *proto)) want.insert(s->id);
        std::vector<uint64_t> got;
        StateFilter f = with(777, std::nullopt);
        f.proto = proto;
        for (int pages = 0;; pages++) {
            REQUIRE(pages < 1000);
            const Json page = table.page(f);
            for (const auto &s : page.at("states"))
                got.push_back(s.at("id").get<uint64_t>());
            if (page.at("next").is_null()) break;
            f.cursor = page.at("next").get<uint64_t>();
        }
        CHECK(got.size() == want.size());
        CHECK(std::set<uint64_t>(got.begin(), got.end()) == want);
    }
    // A cursor past the table is an empty last page.
    const Json past = table.page(with(std::nullopt, 150000));
    CHECK(past.at("states").empty());
    CHECK(past.at("next").is_null());
}

TEST_CASE("show states takes a cursor; a bad one is refused", "[mgmt][pages]") {
    const ParsedRequest p = parse_request(R"({"v":1,"cmd":"show states","args":{"cursor":65536}})");
    REQUIRE(p.request);
    CHECK(p.request->filter.cursor == uint64_t(65536));
    CHECK(parse_request(R"({"v":1,"cmd":"show states","args":{"cursor":"x"}})").error ==
          "show states: \"cursor\" must be an integer >= 0 (a page's \"next\"), got \"x\"");
    CHECK(parse_request(R"({"v":1,"cmd":"kill states","args":{"port":1,"cursor":1}})").error ==
          "kill states: unknown argument \"cursor\" (arguments: addr, port, proto)");
}

TEST_CASE("syncwallctl pages through every state, or stops at its limit", "[mgmt][pages]") {
    FakeTable table(150000, 12345);
    SECTION("everything") {
        StatesWalk walk(Json::object(), 0);
        std::set<uint64_t> got;
        int requests = 0;
        while (const auto args = walk.next_args()) {
            REQUIRE(++requests < 100);
            for (const auto &s : walk.take(answer(table, *args)))
                got.insert(s.at("id").get<uint64_t>());
        }
        CHECK(got.size() == 12345);
        CHECK(walk.listed() == 12345);
        CHECK_FALSE(walk.truncated());
        CHECK(requests >= int(12345 / default_state_page));
    }
    SECTION("a filter and a limit larger than a page") {
        StatesWalk walk(Json{{"proto", "udp"}}, 2500);
        uint64_t got = 0;
        while (const auto args = walk.next_args()) {
            CHECK(args->at("proto") == "udp");
            for (const auto &s : walk.take(answer(table, *args))) {
                CHECK(table.slots[0]->id <= s.at("id").get<uint64_t>());
                got++;
            }
        }
        CHECK(got == 2500);
        CHECK(walk.truncated());
    }
    SECTION("a limit that is exactly what there is") {
        FakeTable small(100, 10);
        StatesWalk walk(Json::object(), 10);
        uint64_t got = 0;
        while (const auto args = walk.next_args())
            got += walk.take(answer(small, *args)).size();
        CHECK(got == 10);
        CHECK_FALSE(walk.truncated());
    }
}

TEST_CASE("syncwallctl refuses pages that do not move on", "[mgmt][pages]") {
    const Json at_10 = Json{{"states", Json::array()}, {"truncated", true}, {"next", 10}};
    StatesWalk walk(Json::object(), 0);
    walk.take(at_10);
    REQUIRE(walk.next_args()->at("cursor") == 10);
    CHECK_THROWS_WITH(walk.take(at_10),
                      "the next page (\"next\": 10) does not follow the last one");
    const Json not_a_slot = Json{{"states", Json::array()}, {"next", "x"}};
    StatesWalk other(Json::object(), 0);
    CHECK_THROWS_WITH(other.take(not_a_slot),
                      "the next page (\"next\": \"x\") does not follow the last one");
    const Json no_states = Json{{"next", nullptr}};
    CHECK_THROWS(other.take(no_states));
    // A reply without "next" (a daemon that does not page) is the whole list.
    const Json whole = Json{{"states", Json::array({Json{{"id", 1}}})}, {"truncated", false}};
    StatesWalk old(Json::object(), 0);
    CHECK(old.take(whole).size() == 1);
    CHECK_FALSE(old.next_args());
}

TEST_CASE("a translated state is selected by either of its keys", "[mgmt][nat]") {
    FakeTable t(8, 4);
    StateFilter f;
    f.port = 61234; // no state's own key has it
    const auto describe = [](uint32_t, const dp::State &s) { return Json{{"id", s.id}}; };
    CHECK(state_page(f, uint32_t(t.slots.size()), t.walk(), describe).at("states").empty());
    // The state in slot 2 was translated to port 61234 on its other key.
    const auto other_key = [](uint32_t slot, const dp::State &s, dp::StateKey &k) {
        if (slot != 2) return false;
        k = s.key;
        k.port[1] = 61234;
        return true;
    };
    const Json page = state_page(f, uint32_t(t.slots.size()), t.walk(), describe, other_key);
    REQUIRE(page.at("states").size() == 1);
    CHECK(page.at("states")[0].at("id") == t.slots[2]->id);
}
