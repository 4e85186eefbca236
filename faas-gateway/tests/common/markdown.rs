//! The repository's markdown as the documentation tests read it: the `sh`
//! blocks they run, found by the section they are in (wherever the section
//! lives: README.md or a page under docs/), and the links and headings the
//! link check follows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository root exists")
}

/// The text of `file`, a path from the repository root (`"README.md"`,
/// `"docs/async.md"`).
pub fn read(file: &str) -> String {
    let path = repo_root().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parser(text: &str) -> Parser<'_> {
    Parser::new_ext(text, Options::ENABLE_TABLES)
}

/// The `n`th (from 0) `sh` code block of the section `heading` of `file`
/// (a path from the repository root). `heading` is the heading line as
/// written, e.g. `"## Quick start"`; the section ends at the next heading
/// of its level or above (a `#` line inside a code block is no heading).
/// Panics, naming what is missing, when the file has no such section or
/// the section too few `sh` blocks: the test running the block fails.
pub fn sh_block(file: &str, heading: &str, n: usize) -> String {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let title = heading[level..].trim();
    let text = read(file);
    let (mut found, mut inside) = (false, false);
    let mut heading_text: Option<(usize, String)> = None;
    let mut code: Option<String> = None;
    let mut blocks = Vec::new();
    for event in parser(&text) {
        match event {
            Event::Start(Tag::Heading { level: this, .. }) => heading_text = Some((this as usize, String::new())),
            Event::End(TagEnd::Heading(_)) => {
                let (this, words) = heading_text.take().unwrap_or_default();
                if inside && this <= level {
                    break;
                }
                if this == level && words.trim() == title {
                    (found, inside) = (true, true);
                }
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))) if inside && lang.as_ref() == "sh" => {
                code = Some(String::new())
            }
            Event::Text(words) | Event::Code(words) => {
                if let Some((_, heading)) = heading_text.as_mut() {
                    heading.push_str(&words);
                } else if let Some(code) = code.as_mut() {
                    code.push_str(&words);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(code.take()),
            _ => {}
        }
    }
    assert!(found, "{file} has no section `{heading}`");
    let block = blocks
        .get(n)
        .unwrap_or_else(|| panic!("section `{heading}` of {file} has {} sh blocks, not {}", blocks.len(), n + 1));
    block.strip_suffix('\n').unwrap_or(block).to_owned()
}

/// Every link and image destination of `text`, with the line it is on.
pub fn links(text: &str) -> Vec<(String, usize)> {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    parser(text)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some((dest_url.into_string(), line_of(range.start)))
            }
            _ => None,
        })
        .collect()
}

/// The anchors GitHub gives the headings of `text`: lowercased, characters
/// other than letters, digits, `-`, `_` and spaces dropped, spaces turned
/// into `-`, a repeated anchor suffixed `-1`, `-2`, ...
pub fn anchors(text: &str) -> Vec<String> {
    let mut anchors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    for event in parser(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(words) | Event::Code(words) => {
                if let Some(heading) = heading.as_mut() {
                    heading.push_str(&words);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let words = heading.take().unwrap_or_default();
                let slug: String = words
                    .trim()
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let count = seen.entry(slug.clone()).or_insert(0);
                anchors.push(if *count == 0 { slug } else { format!("{slug}-{count}") });
                *count += 1;
            }
            _ => {}
        }
    }
    anchors
}
