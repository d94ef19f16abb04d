//! Lua that spins forever inside each kind of C call or metamethod, and
//! that `pcall` cannot save (tests/stop.rs and tests/stop_drop.rs).

/// Each with its name.
pub const SPINNERS: [(&str, &str); 9] = [
    (
        "sort comparator",
        "table.sort({3, 2, 1}, function() while true do end end)",
    ),
    (
        "gsub callback",
        "string.gsub('abc', '.', function() while true do end end)",
    ),
    (
        "__tostring",
        "tostring(setmetatable({}, { __tostring = function() while true do end end }))",
    ),
    ("load reader", "load(function() while true do end end)"),
    (
        "xpcall handler",
        "xpcall(error, function() while true do end end)",
    ),
    (
        "__index",
        "local _ = setmetatable({}, { __index = function() while true do end end }).x",
    ),
    (
        "__gc",
        "setmetatable({}, { __gc = function() while true do end end }) collectgarbage()",
    ),
    (
        "pcall loop",
        "while true do pcall(string.gsub, 'a', '.', function() while true do end end) end",
    ),
    (
        "nested coroutine",
        "coroutine.wrap(function() table.sort({3, 2, 1}, function() while true do end end) end)()",
    ),
];
