//! The import rule of the README's "Layout" section, checked on the source.
//!
//! Every `crate::…` path (in `use` lines and inline) and every `super::…` path
//! that climbs to the crate root names a room; each room may use only the rooms
//! the rule allows. `domain` is two things: its vocabulary (ids, the store trait
//! and its records, the clock), which every room may use and which uses nothing,
//! and its services, which use `fetch`, `imaging` and `storage`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The files of `domain` that make up its vocabulary.
const VOCABULARY: &[&str] = &[
    "avatar_id",
    "clock",
    "control_store",
    "events",
    "fetchable_url",
    "ids",
    "store",
];

/// Room → the rooms it may use (besides itself, `domain`'s vocabulary and
/// `telemetry`, which every room may use). `None`: anything (the wiring).
fn allowed(room: &str) -> Option<&'static [&'static str]> {
    Some(match room {
        "domain-vocabulary" | "telemetry" | "fetch" | "imaging" | "storage" | "repo" | "auth" => {
            &[]
        }
        "domain" => &["fetch", "imaging", "storage"],
        "config" => &["domain", "fetch", "imaging", "storage", "telemetry"],
        "backup" => &["config", "storage"],
        // Above the domain: they reach storage only to serve stored bytes.
        "api" => &["domain", "auth", "storage"],
        // The web console's pages: over the domain like api, never through api.
        "console" => &["domain", "auth", "storage"],
        // The callback dispatcher: domain's outbox and events, sent through fetch.
        "delivery" => &["domain", "fetch"],
        // The test control plane: its own routes, answered in the API's envelope.
        "operator" => &["domain", "auth", "storage", "api"],
        "startup" | "cli" | "lib" | "main" => return None,
        other => panic!("src/{other} is a room the architecture rule does not know: add it"),
    })
}

/// The room a file belongs to, and its module path below the crate root.
fn locate(src: &Path, file: &Path) -> (String, Vec<String>) {
    let relative = file.strip_prefix(src).unwrap();
    let mut module: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if module.last().is_some_and(|last| last == "mod") {
        module.pop();
    }
    let room = match module.as_slice() {
        [] => unreachable!(),
        [top] if top == "lib" || top == "main" => top.clone(),
        [domain, file, ..] if domain == "domain" && VOCABULARY.contains(&file.as_str()) => {
            "domain-vocabulary".to_owned()
        }
        [top, ..] => top.clone(),
    };
    if module == ["lib"] || module == ["main"] {
        module.clear();
    }
    (room, module)
}

/// The source without comments and string literals, so prose that mentions a
/// path is not mistaken for one.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Flattens a use tree such as `a::{b::C, d}` into its paths (`a::b::C`, `a::d`).
fn flatten(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path: Vec<String> = tree
            .split("::")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        return vec![path];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let inner = &tree[open + 1..open + 1 + matching_brace(&tree[open + 1..])];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(flatten)
        .map(|tail| prefix.iter().cloned().chain(tail).collect())
        .collect()
}

/// The text of the path starting at `text`: identifiers, `::` and balanced braces.
fn path_text(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth > 0 || c.is_ascii_alphanumeric() || c == '_' || c == ':' => {}
            _ => return &text[..i],
        }
        if depth == 0 && c == '}' {
            return &text[..=i];
        }
    }
    text
}

/// Every (crate-level module, item) a file's code refers to: `crate::x::Item`,
/// `use crate::x::{..}`, `use crate::{x, y}`, and `super::` paths resolved from
/// the file's own module. The item is the segment after the module (`*` if none).
fn references(code: &str, module: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let fresh = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b':'));
        let (base, skip): (&[String], usize) = if fresh && rest.starts_with("crate::") {
            (&[], "crate::".len())
        } else if fresh && rest.starts_with("super::") {
            let mut depth = module.len();
            let mut j = 0;
            while rest[j..].starts_with("super::") {
                depth = depth.saturating_sub(1);
                j += "super::".len();
            }
            (&module[..depth], j)
        } else {
            i += 1;
            continue;
        };
        // `use super::*;` is how an inline test module takes in its own file.
        if rest[skip..].starts_with('*') {
            i += skip + 1;
            continue;
        }
        let path = path_text(&rest[skip..]);
        for tail in flatten(path) {
            let absolute: Vec<&String> = base.iter().chain(tail.iter()).collect();
            if let Some(room) = absolute.first() {
                let item = absolute.get(1).map_or("*", |s| s.as_str());
                found.push(((*room).clone(), item.to_owned()));
            }
        }
        i += skip + path.len().max(1);
    }
    found
}

fn matching_brace(group: &str) -> usize {
    let mut depth = 1;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    group.len()
}

/// Names `domain` exports from its vocabulary files (`pub use ids::{AppId, …}`).
fn vocabulary_names(src: &Path) -> BTreeSet<String> {
    let domain = std::fs::read_to_string(src.join("domain/mod.rs")).unwrap();
    let code = code_only(&domain);
    let mut names: BTreeSet<String> = VOCABULARY.iter().map(|s| (*s).to_owned()).collect();
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        if VOCABULARY.contains(&module) {
            let items = items.trim().trim_start_matches('{').trim_end_matches('}');
            names.extend(
                items
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            );
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import that breaks the rule, as `file: room uses room::item`.
fn violations(src: &Path) -> Vec<String> {
    let vocabulary = vocabulary_names(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut broken = Vec::new();
    for file in files {
        let (room, module) = locate(src, &file);
        let Some(allowed) = allowed(&room) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for (target, item) in references(&code, &module) {
            // Everyone may use the vocabulary; only the domain itself and the
            // rooms above it may use its services.
            let fine = target == room
                || (target == "telemetry" && room != "domain-vocabulary")
                || if target == "domain" {
                    vocabulary.contains(&item) || allowed.contains(&"domain")
                } else {
                    allowed.contains(&target.as_str())
                };
            if !fine {
                broken.push(format!(
                    "{}: {room} uses {target}::{item}",
                    file.strip_prefix(src).unwrap().display()
                ));
            }
        }
    }
    broken
}

#[test]
fn every_import_follows_the_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let broken = violations(&src);
    assert!(
        broken.is_empty(),
        "imports that break the rule in README \"Layout\":\n{}",
        broken.join("\n")
    );
}

/// The checker itself: a planted import of each kind is caught.
#[test]
fn the_checker_catches_planted_violations() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "domain/mod.rs",
        "mod ids;\nmod accounts;\npub use ids::{AppId, Wxid};\npub use accounts::Accounts;\n",
    );
    write("domain/ids.rs", "use crate::fetch::check;\n");
    write("domain/accounts.rs", "use crate::fetch::Fetcher;\n");
    // Every room may record metrics, except the vocabulary, which uses nothing.
    write("domain/clock.rs", "use crate::telemetry::metrics;\n");
    write("fetch/mod.rs", "use crate::telemetry::metrics;\n");
    write(
        "storage/mod.rs",
        "use crate::domain::{AppId, Accounts};\nfn f() { crate::api::router(); }\n",
    );
    write("repo/sqlite.rs", "use super::super::api::x;\n");
    write("api/personal/a.rs", "use crate::{domain::AppId, repo};\n");
    let mut broken = violations(src);
    broken.sort();
    assert_eq!(
        broken,
        [
            "api/personal/a.rs: api uses repo::*",
            "domain/clock.rs: domain-vocabulary uses telemetry::metrics",
            "domain/ids.rs: domain-vocabulary uses fetch::check",
            "repo/sqlite.rs: repo uses api::x",
            "storage/mod.rs: storage uses api::router",
            "storage/mod.rs: storage uses domain::Accounts",
        ]
    );
}

#[test]
fn every_room_is_known() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut rooms = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let (room, _) = locate(&src, &file);
        rooms.insert(room.clone(), allowed(&room).is_some());
    }
    assert!(rooms.contains_key("domain-vocabulary"), "{rooms:?}");
}
