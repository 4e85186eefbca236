//! The documentation's shape: every relative link in the repository's
//! markdown (README.md, docs/, BENCHMARKS.md, the crates' READMEs) points at
//! a file that exists, and its `#anchor` at a heading there, so moving a
//! section cannot leave a dead link; and README.md stays short.

mod common;

use std::path::{Path, PathBuf};

use common::markdown;

/// Markdown files under `dir`, skipping hidden directories and build
/// output (`target`), at most `depth` levels down.
fn markdown_files(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if depth > 0 && !name.starts_with('.') && name != "target" {
                markdown_files(&path, depth - 1, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The links of `file` that do not resolve, each as `file:line: link (why)`.
/// Links with a scheme (`https://`, `mailto:`) are not followed.
fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut broken = Vec::new();
    for (link, line) in markdown::links(&text) {
        if link.contains("://") || link.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
        let target = if path.is_empty() { file.to_path_buf() } else { file.parent().unwrap().join(path) };
        let why = if path.starts_with('/') {
            Some("absolute paths do not resolve in a checkout".to_owned())
        } else if !target.exists() {
            Some(format!("{} does not exist", target.display()))
        } else if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
            let anchors = markdown::anchors(&std::fs::read_to_string(&target).unwrap());
            (!anchors.iter().any(|a| a == anchor)).then(|| format!("no heading has that anchor; there are {anchors:?}"))
        } else {
            None
        };
        if let Some(why) = why {
            broken.push(format!("{}:{line}: {link} ({why})", file.display()));
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = markdown::repo_root();
    let mut files = Vec::new();
    markdown_files(&root, 4, &mut files);
    let relative: Vec<String> =
        files.iter().map(|f| f.strip_prefix(&root).unwrap().to_string_lossy().into_owned()).collect();
    for needed in ["README.md", "docs/local.md", "docs/swarm.md", "docs/k8s.md", "docs/cattle.md", "docs/async.md"] {
        assert!(relative.iter().any(|f| f == needed), "{needed} is checked: {relative:?}");
    }
    let links: usize = files.iter().map(|f| markdown::links(&std::fs::read_to_string(f).unwrap()).len()).sum();
    assert!(links > 50, "only {links} links found in {relative:?}");
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "dead links:\n{}", broken.join("\n"));
}

#[test]
fn the_check_finds_a_missing_file_and_a_missing_anchor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.md"), "# B\n\n## Real heading\n\n```sh\n# not a heading\n```\n").unwrap();
    std::fs::write(
        dir.path().join("a.md"),
        "# Local\n\n[gone](missing.md), [no anchor](b.md#nope), [code](b.md#not-a-heading),\n\
         [fine](b.md#real-heading), [here](#local), [dir](.), <https://example.com/x>\n\n\
         | table | link |\n|---|---|\n| x | [in a table](b.md#also-gone) |\n",
    )
    .unwrap();
    let broken = broken_links(&dir.path().join("a.md"));
    assert_eq!(broken.len(), 4, "{broken:#?}");
    for link in ["missing.md", "b.md#nope", "b.md#not-a-heading", "b.md#also-gone"] {
        assert!(broken.iter().any(|b| b.contains(&format!(": {link} ("))), "{link} is reported: {broken:#?}");
    }
    assert!(broken[0].contains("a.md:3: missing.md"), "with its line: {broken:#?}");
}

#[test]
fn anchors_are_the_ones_github_makes() {
    let text = "# faas-rs\n\n## Triggers: cron schedules and NATS subjects\n\n\
                ## Metrics (on `/metrics`, label `function_name` = `name.namespace`)\n\n\
                ## Per-function settings (labels, OpenFaaS's names)\n\n## Flags\n\n## Flags\n";
    assert_eq!(
        markdown::anchors(text),
        [
            "faas-rs",
            "triggers-cron-schedules-and-nats-subjects",
            "metrics-on-metrics-label-function_name--namenamespace",
            "per-function-settings-labels-openfaass-names",
            "flags",
            "flags-1",
        ]
    );
}

/// The README is what a newcomer reads first: what it is, the two commands,
/// the quick start, the architecture and links (issue 15: under 250 lines);
/// references belong in docs/.
#[test]
fn the_readme_stays_short() {
    let lines = markdown::read("README.md").lines().count();
    assert!(lines < 250, "README.md has {lines} lines; move reference material to docs/");
}
