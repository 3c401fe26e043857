//! `grep` and `glob` against ripgrep itself on the same tree: same files, same lines, same counts.

use crate::support::{Sandbox, TestResult};
use std::collections::BTreeSet;
use std::process::Command;

/// A tree with ignored, hidden, binary and nested files.
fn tree() -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sb = Sandbox::new()?;
    sb.write(".gitignore", "target/\n*.log\n")?;
    sb.write(
        "src/main.rs",
        "fn main() {\n    // TODO: parse args\n    let x = compute();\n    println!(\"{x}\");\n}\n",
    )?;
    sb.write(
        "src/lib.rs",
        "pub fn compute() -> i32 {\n    42 // todo tidy\n}\n\npub fn other() {}\n// TODO twice\n",
    )?;
    sb.write(
        "src/deep/nested/mod.rs",
        "mod a;\n// Todo mixed case\nfn compute_more() {}\n",
    )?;
    sb.write(
        "scripts/run.py",
        "def compute():\n    # TODO python\n    return 1\n",
    )?;
    sb.write(
        "docs/guide.md",
        "# Guide\nTODO: write the guide\ncompute things\n",
    )?;
    sb.write("target/debug/gen.rs", "// TODO generated, ignored\n")?;
    sb.write("build.log", "TODO in a log, ignored\n")?;
    sb.write(".hidden/secret.rs", "// TODO hidden\n")?;
    sb.write("data.bin", b"TODO\0binary\0")?;
    let many: String = (0..50).map(|i| format!("line {i} compute\n")).collect();
    sb.write("src/many.txt", many)?;
    Ok(sb)
}

fn rg(
    sb: &Sandbox,
    dir: &str,
    args: &[&str],
) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let out = Command::new("rg")
        .args(args)
        .current_dir(sb.repo().join(dir))
        .output()
        .map_err(|e| {
            format!("ripgrep (`rg`) is needed for these tests; .ci/run installs it: {e}")
        })?;
    // rg exits 1 when nothing matched; that is an answer too.
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "rg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(lines(&String::from_utf8_lossy(&out.stdout)))
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| *l != "--" && !l.is_empty())
        .map(|l| l.strip_prefix("./").unwrap_or(l).to_string())
        .collect()
}

fn cove(
    sb: &Sandbox,
    tool: &str,
    input: serde_json::Value,
) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let run = sb.call(tool, &input.to_string())?;
    let out = run.out();
    Ok(lines(out)
        .into_iter()
        .filter(|l| l != "No matches found" && l != "No files found")
        .collect())
}

#[test]
fn grep_files_with_matches_equals_rg_l() -> TestResult {
    let sb = tree()?;
    for (pattern, extra) in [
        ("TODO", vec![]),
        ("compute", vec![]),
        ("todo", vec!["-i"]),
        ("nomatchxyz", vec![]),
    ] {
        let mut args = vec!["-l"];
        args.extend(extra.iter().copied());
        args.push(pattern);
        let expected = rg(&sb, ".", &args)?;
        let got = cove(
            &sb,
            "grep",
            serde_json::json!({"pattern": pattern, "-i": !extra.is_empty()}),
        )?;
        assert_eq!(got, expected, "pattern {pattern} {extra:?}");
    }
    // Ignored, hidden and binary files are not searched.
    let got = cove(&sb, "grep", serde_json::json!({"pattern": "TODO"}))?;
    assert!(
        got.iter().all(|p| !p.contains("target")
            && !p.contains("build.log")
            && !p.contains(".hidden")
            && p != "data.bin"),
        "{got:?}"
    );
    Ok(())
}

#[test]
fn grep_content_and_count_equal_rg() -> TestResult {
    let sb = tree()?;
    let expected = rg(&sb, ".", &["-n", "--no-heading", "TODO"])?;
    let got = cove(
        &sb,
        "grep",
        serde_json::json!({"pattern": "TODO", "output_mode": "content"}),
    )?;
    assert_eq!(got, expected);
    let expected = rg(
        &sb,
        ".",
        &["-n", "--no-heading", "-C", "1", "compute\\(\\)"],
    )?;
    let got = cove(
        &sb,
        "grep",
        serde_json::json!({"pattern": "compute\\(\\)", "output_mode": "content", "-C": 1}),
    )?;
    assert_eq!(got, expected);
    let expected = rg(
        &sb,
        ".",
        &["-n", "--no-heading", "-B", "2", "-A", "0", "-i", "todo"],
    )?;
    let got = cove(
        &sb,
        "grep",
        serde_json::json!({"pattern": "todo", "output_mode": "content", "-B": 2, "-A": 0, "-i": true}),
    )?;
    assert_eq!(got, expected);
    let expected = rg(&sb, ".", &["--no-heading", "--no-line-number", "compute"])?;
    let got = cove(
        &sb,
        "grep",
        serde_json::json!({"pattern": "compute", "output_mode": "content", "-n": false}),
    )?;
    assert_eq!(got, expected);
    let expected = rg(&sb, ".", &["-c", "compute"])?;
    let got = cove(
        &sb,
        "grep",
        serde_json::json!({"pattern": "compute", "output_mode": "count"}),
    )?;
    assert_eq!(got, expected);
    Ok(())
}

#[test]
fn grep_glob_type_and_path_filters_equal_rg() -> TestResult {
    let sb = tree()?;
    let expected = rg(&sb, ".", &["-l", "-g", "*.rs", "compute"])?;
    assert_eq!(
        cove(
            &sb,
            "grep",
            serde_json::json!({"pattern": "compute", "glob": "*.rs"})
        )?,
        expected
    );
    let expected = rg(&sb, ".", &["-l", "-t", "py", "TODO"])?;
    assert_eq!(
        cove(
            &sb,
            "grep",
            serde_json::json!({"pattern": "TODO", "type": "py"})
        )?,
        expected
    );
    let expected = rg(&sb, ".", &["-l", "TODO", "src"])?;
    assert_eq!(
        cove(
            &sb,
            "grep",
            serde_json::json!({"pattern": "TODO", "path": "src"})
        )?,
        expected
    );
    let abs = sb.repo().join("src/deep");
    let expected = rg(&sb, ".", &["-l", "compute", "src/deep"])?;
    assert_eq!(
        cove(
            &sb,
            "grep",
            serde_json::json!({"pattern": "compute", "path": abs})
        )?,
        expected
    );
    let expected = rg(
        &sb,
        ".",
        &["-n", "--no-heading", "-U", "compute\\(\\):\\n\\s+#"],
    )?;
    let input = serde_json::json!({"pattern": "compute\\(\\):\\n\\s+#", "multiline": true, "output_mode": "content"});
    let got = cove(&sb, "grep", input)?;
    assert_eq!(got, expected);
    assert!(!expected.is_empty());
    Ok(())
}

#[test]
fn grep_limits_and_errors() -> TestResult {
    let sb = tree()?;
    let out = sb
        .call(
            "grep",
            r#"{"pattern":"compute","output_mode":"content","head_limit":5}"#,
        )?
        .out()
        .to_string();
    assert_eq!(
        out.lines().filter(|l| l.contains("compute")).count(),
        5,
        "{out}"
    );
    assert!(out.contains("results cut at 5"), "{out}");
    assert!(
        sb.call("grep", r#"{"pattern":"(unclosed"}"#)?
            .err()
            .contains("invalid regular expression")
    );
    assert!(
        sb.call("grep", r#"{"pattern":"x","type":"klingon"}"#)?
            .err()
            .contains("unknown file type `klingon`")
    );
    assert!(
        sb.call("grep", r#"{"pattern":"x","path":"/etc"}"#)?
            .err()
            .contains("outside the worktree")
    );
    assert!(
        sb.call("grep", r#"{"pattern":"x","path":"../outside"}"#)?
            .err()
            .contains("outside the worktree")
    );
    assert!(
        sb.call("grep", r#"{"pattern":"x","output_mode":"lines"}"#)?
            .err()
            .contains("does not match its schema")
    );
    Ok(())
}

#[test]
fn glob_equals_rg_files_and_lists_newest_first() -> TestResult {
    let sb = tree()?;
    for pattern in ["*.rs", "**/*.rs", "src/**/*.rs", "*.{py,md}", "nomatch.*"] {
        let expected = rg(&sb, ".", &["--files", "-g", pattern])?;
        assert_eq!(
            cove(&sb, "glob", serde_json::json!({"pattern": pattern}))?,
            expected,
            "{pattern}"
        );
    }
    let expected: BTreeSet<String> = rg(&sb, "src", &["--files", "-g", "*.rs"])?
        .into_iter()
        .map(|p| format!("src/{p}"))
        .collect();
    assert_eq!(
        cove(
            &sb,
            "glob",
            serde_json::json!({"pattern": "*.rs", "path": "src"})
        )?,
        expected
    );

    let now = std::time::SystemTime::now();
    for (i, f) in ["src/main.rs", "src/lib.rs", "src/deep/nested/mod.rs"]
        .iter()
        .enumerate()
    {
        let file = std::fs::File::options()
            .write(true)
            .open(sb.repo().join(f))?;
        file.set_modified(now - std::time::Duration::from_secs(1000 * (i as u64 + 1)))?;
    }
    sb.write("src/newest.rs", "// new\n")?;
    let out = sb
        .call("glob", r#"{"pattern":"**/*.rs"}"#)?
        .out()
        .to_string();
    let order: Vec<&str> = out.lines().collect();
    assert_eq!(
        order,
        [
            "src/newest.rs",
            "src/main.rs",
            "src/lib.rs",
            "src/deep/nested/mod.rs"
        ]
    );
    Ok(())
}

#[test]
fn glob_caps_long_listings() -> TestResult {
    let sb = Sandbox::new()?;
    for i in 0..130 {
        sb.write(&format!("gen/f{i:03}.txt"), "x")?;
    }
    let out = sb
        .call("glob", r#"{"pattern":"gen/*.txt"}"#)?
        .out()
        .to_string();
    assert_eq!(out.lines().filter(|l| l.starts_with("gen/")).count(), 100);
    assert!(out.contains("30 more files not shown"), "{out}");
    Ok(())
}
