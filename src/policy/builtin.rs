//! The packs shipped in `policies/`, built into the binary: in force by default (also when a
//! policy directory exists: its files add to them, and a file with a pack's name replaces that
//! pack), so `wrap` is protected with no set-up at all. `policy.builtin = false` turns them off.

pub const BUILTIN_PACKS: &[(&str, &str)] = &[
    (
        "everything.toml",
        include_str!("../../policies/everything.toml"),
    ),
    ("fetch.toml", include_str!("../../policies/fetch.toml")),
    (
        "filesystem.toml",
        include_str!("../../policies/filesystem.toml"),
    ),
    ("github.toml", include_str!("../../policies/github.toml")),
    ("memory.toml", include_str!("../../policies/memory.toml")),
    (
        "postgres.toml",
        include_str!("../../policies/postgres.toml"),
    ),
];
