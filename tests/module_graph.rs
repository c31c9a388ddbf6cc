//! The crate's modules form a DAG: no file under `src/` imports, directly or through
//! others, a module that imports it back (shared/DESIGN.md, "Layout").
//!
//! Every `crate::…` and `super::…` path in a file's code (comments and `#[cfg(test)]`
//! modules aside) is an edge to the deepest module file it names. A path that stops at a
//! facade (`crate::Identity`, or `crate::store::KeyStore` when `store/mod.rs` only
//! re-exports) is an edge to that facade, which imports everything below it: so code
//! names items by the file that defines them, and facades re-export downwards only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path, `[]` for the crate root.
type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module a file defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The code of a file, without comments and without its `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            // Skip the test module: up to the closing brace at its own indentation.
            let indent = line.len() - trimmed.len();
            for inner in lines.by_ref() {
                let inner_trimmed = inner.trim_start();
                if inner_trimmed == "}" && inner.len() - inner_trimmed.len() == indent {
                    break;
                }
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let line = match line.find("//") {
            // A trailing comment, unless the `//` sits in a string (`"http://…"`).
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every path of identifiers starting at `crate::` or `super::` in `code`, including the
/// members of `use crate::a::{b, c::d}` groups.
fn paths(code: &str, here: &Module) -> Vec<Module> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &code[at..];
        let start = if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            // `super` is the parent of this module, whichever file defines it.
            let mut base = here.clone();
            let mut len = 0;
            while code[at + len..].starts_with("super::") {
                base.pop();
                len += "super::".len();
            }
            Some((base, len))
        } else {
            None
        };
        let preceded_by_ident = at > 0 && {
            let before = bytes[at - 1];
            before.is_ascii_alphanumeric() || before == b'_' || before == b'$'
        };
        match start {
            Some((base, len)) if !preceded_by_ident => {
                let consumed = read_path(&code[at + len..], base, &mut found);
                at += len + consumed;
            }
            _ => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    found
}

/// Reads `a::b::{c, d::e}` after a `crate::`/`super::` prefix; pushes each full path.
fn read_path(text: &str, mut base: Module, found: &mut Vec<Module>) -> usize {
    let mut at = 0;
    loop {
        let ident: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        at += ident.len();
        base.push(ident);
        if text[at..].starts_with("::{") {
            at += 3;
            // A group: each member is a path relative to `base`.
            loop {
                let member = &text[at..];
                let skipped = member.len() - member.trim_start().len();
                at += skipped;
                if text[at..].starts_with('}') {
                    at += 1;
                    break;
                }
                at += read_path(&text[at..], base.clone(), found);
                let member = &text[at..];
                let skipped = member.len() - member.trim_start().len();
                at += skipped;
                if text[at..].starts_with(',') {
                    at += 1;
                } else if text[at..].starts_with(" as ") {
                    at += 4;
                    at += text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .count();
                } else if !text[at..].starts_with('}') {
                    // Something we do not read (a macro fragment): stop here.
                    return at;
                }
            }
            return at;
        }
        if text[at..].starts_with("::") {
            at += 2;
            continue;
        }
        break;
    }
    found.push(base);
    at
}

/// The deepest module file `path` names.
fn resolve(path: &Module, modules: &BTreeSet<Module>) -> Module {
    let mut prefix = path.clone();
    while !modules.contains(&prefix) {
        prefix.pop();
    }
    prefix
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|file| module_of(&src, file)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let here = module_of(&src, file);
        let text = fs::read_to_string(file).expect("a readable source file");
        let targets = edges.entry(here.clone()).or_default();
        for path in paths(&code_of(&text), &here) {
            let target = resolve(&path, &modules);
            if target != here {
                targets.insert(target);
            }
        }
    }
    edges
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate (lib.rs)".to_owned()
    } else {
        module.join("::")
    }
}

/// A cycle through `node`, if depth-first search from it finds one.
fn find_cycle(
    node: &Module,
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    stack: &mut Vec<Module>,
    done: &mut BTreeSet<Module>,
) -> Option<Vec<Module>> {
    if let Some(position) = stack.iter().position(|on| on == node) {
        let mut cycle = stack[position..].to_vec();
        cycle.push(node.clone());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.clone());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(cycle) = find_cycle(next, edges, stack, done) {
            return Some(cycle);
        }
    }
    stack.pop();
    done.insert(node.clone());
    None
}

#[test]
fn modules_import_downward_only() {
    let edges = graph();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = find_cycle(node, &edges, &mut Vec::new(), &mut done) {
            let shown: Vec<String> = cycle.iter().map(name).collect();
            panic!("import cycle: {}", shown.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    // `a` uses `crate::b::X`, `b` uses `super::a::Y`: a cycle through two files.
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let modules: BTreeSet<Module> = [Vec::new(), a.clone(), b.clone()].into();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (here, code) in [(&a, "use crate::b::X;"), (&b, "use super::a::{Y, z::W};")] {
        let targets: BTreeSet<Module> = paths(code, here)
            .iter()
            .map(|path| resolve(path, &modules))
            .collect();
        edges.insert(here.clone(), targets);
    }
    let cycle = find_cycle(&a, &edges, &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(cycle, Some(vec![a.clone(), b, a]));
}

#[test]
fn comments_and_test_modules_are_not_imports() {
    let code = code_of(
        "use crate::a::X; // see crate::b\n/// [`Y`](crate::c::Y)\n#[cfg(test)]\nmod tests {\n    use crate::d::Z;\n}\n",
    );
    let found = paths(&code, &Vec::new());
    assert_eq!(found, vec![vec!["a".to_owned(), "X".to_owned()]]);
}
