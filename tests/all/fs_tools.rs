//! The built-in `read`, `write`, `edit` and `ls` tools, end to end.

use crate::support::{Sandbox, TestResult};

#[test]
fn read_numbers_lines_and_pages_with_offset_and_limit() -> TestResult {
    let sb = Sandbox::new()?;
    let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    let abs = sb.write("f.txt", &text)?;
    let out = sb
        .call("read", r#"{"file_path":"f.txt"}"#)?
        .out()
        .to_string();
    assert!(out.starts_with("     1\tline 1\n"), "{out}");
    assert!(out.contains("    30\tline 30\n"), "{out}");
    // Absolute paths inside the worktree work: models mostly send those.
    let input = serde_json::json!({"file_path": abs, "offset": 10, "limit": 3}).to_string();
    let out = sb.call("read", &input)?.out().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        ["    10\tline 10", "    11\tline 11", "    12\tline 12"]
    );
    assert!(
        lines[3].contains("18 more lines; continue with offset 13"),
        "{out}"
    );
    let out = sb
        .call("read", r#"{"file_path":"f.txt","offset":99}"#)?
        .out()
        .to_string();
    assert!(
        out.contains("has 30 lines; offset 99 is past the end"),
        "{out}"
    );
    Ok(())
}

#[test]
fn read_says_clearly_when_a_file_is_binary_empty_a_directory_or_too_big() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("bin.dat", [0u8, 159, 146, 150, 0, 1, 2])?;
    let out = sb
        .call("read", r#"{"file_path":"bin.dat"}"#)?
        .out()
        .to_string();
    assert!(out.contains("binary file (7 bytes)"), "{out}");
    sb.write("empty.txt", "")?;
    assert!(
        sb.call("read", r#"{"file_path":"empty.txt"}"#)?
            .out()
            .contains("is empty")
    );
    sb.write("d/x", "x")?;
    assert!(
        sb.call("read", r#"{"file_path":"d"}"#)?
            .err()
            .contains("is a directory; use `ls`")
    );
    let big: String = (0..40_000).map(|i| format!("row {i}\n")).collect();
    sb.write("big.txt", &big)?;
    let run = sb.call("read", r#"{"file_path":"big.txt"}"#)?;
    assert!(
        run.err().contains("pass offset and limit"),
        "{}",
        run.stderr
    );
    let out = sb
        .call(
            "read",
            r#"{"file_path":"big.txt","offset":39999,"limit":5}"#,
        )?
        .out()
        .to_string();
    assert!(
        out.starts_with(" 39999\trow 39998\n 40000\trow 39999\n"),
        "{out}"
    );
    assert!(
        sb.call("read", r#"{"file_path":"missing.txt"}"#)?
            .err()
            .contains("no such file")
    );
    let long = format!("{}\n", "x".repeat(5000));
    sb.write("long.txt", &long)?;
    assert!(
        sb.call("read", r#"{"file_path":"long.txt"}"#)?
            .out()
            .contains("[line cut at 2000 characters]")
    );
    Ok(())
}

#[test]
fn write_creates_parents_and_replaces_files() -> TestResult {
    let sb = Sandbox::new()?;
    let out = sb
        .call(
            "write",
            r#"{"file_path":"new/deep/file.rs","content":"fn a() {}\n"}"#,
        )?
        .out()
        .to_string();
    assert!(out.starts_with("Created new/deep/file.rs"), "{out}");
    assert_eq!(sb.read("new/deep/file.rs")?, "fn a() {}\n");
    let out = sb
        .call(
            "write",
            r#"{"file_path":"new/deep/file.rs","content":"fn b() {}\n"}"#,
        )?
        .out()
        .to_string();
    assert!(out.starts_with("Overwrote"), "{out}");
    assert_eq!(sb.read("new/deep/file.rs")?, "fn b() {}\n");
    Ok(())
}

#[test]
fn edit_replaces_a_unique_string_and_shows_the_result() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write(
        "src/lib.rs",
        "fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
    )?;
    let out = sb
        .call(
            "edit",
            r#"{"file_path":"src/lib.rs","old_string":"    a - b","new_string":"    a + b"}"#,
        )?
        .out()
        .to_string();
    assert!(out.contains("replaced 1 occurrence"), "{out}");
    assert!(out.contains("     2\t    a + b"), "{out}");
    assert_eq!(
        sb.read("src/lib.rs")?,
        "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"
    );
    Ok(())
}

#[test]
fn edit_refuses_absent_or_ambiguous_text_and_leaves_the_file_untouched() -> TestResult {
    let sb = Sandbox::new()?;
    let original = "let x = 1;\nlet y = 1;\nlet z = 2;\n";
    sb.write("a.rs", original)?;
    let run = sb.call(
        "edit",
        r#"{"file_path":"a.rs","old_string":"let w","new_string":"let v"}"#,
    )?;
    assert!(
        run.err().contains("was not found in a.rs"),
        "{}",
        run.stderr
    );
    assert!(
        run.err().contains("text from a.rs itself"),
        "{}",
        run.stderr
    );
    let run = sb.call(
        "edit",
        r#"{"file_path":"a.rs","old_string":"= 1;","new_string":"= 3;"}"#,
    )?;
    assert!(
        run.err().contains("occurs 2 times in a.rs"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("replace_all"), "{}", run.stderr);
    let run = sb.call(
        "edit",
        r#"{"file_path":"a.rs","old_string":"x","new_string":"x"}"#,
    )?;
    assert!(run.err().contains("the same"), "{}", run.stderr);
    assert_eq!(sb.read("a.rs")?, original);
    let out = sb
        .call(
            "edit",
            r#"{"file_path":"a.rs","old_string":"= 1;","new_string":"= 3;","replace_all":true}"#,
        )?
        .out()
        .to_string();
    assert!(out.contains("replaced 2 occurrences"), "{out}");
    assert_eq!(sb.read("a.rs")?, "let x = 3;\nlet y = 3;\nlet z = 2;\n");
    Ok(())
}

#[test]
fn edit_with_empty_old_string_creates_a_missing_file_only() -> TestResult {
    let sb = Sandbox::new()?;
    sb.call(
        "edit",
        r#"{"file_path":"fresh.txt","old_string":"","new_string":"hi\n"}"#,
    )?
    .out();
    assert_eq!(sb.read("fresh.txt")?, "hi\n");
    let run = sb.call(
        "edit",
        r#"{"file_path":"fresh.txt","old_string":"","new_string":"other"}"#,
    )?;
    assert!(run.err().contains("already has content"), "{}", run.stderr);
    assert_eq!(sb.read("fresh.txt")?, "hi\n");
    let run = sb.call(
        "edit",
        r#"{"file_path":"nope.txt","old_string":"a","new_string":"b"}"#,
    )?;
    assert!(run.err().contains("no such file"), "{}", run.stderr);
    Ok(())
}

/// What small models did: edit a file under a name they made up, with old_string equal to
/// new_string. The missing file is what they must hear of, with the names that do exist.
#[test]
fn edit_of_a_missing_file_names_the_files_that_are_there() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("calc.py", "x = 1\n")?;
    sb.write("test_calc.py", "y\n")?;
    sb.write("pkg/mod.py", "z\n")?;
    let run = sb.call(
        "edit",
        r#"{"file_path":"calculate.py","old_string":"x = 1","new_string":"x = 1"}"#,
    )?;
    let err = run.err();
    assert!(err.contains("calculate.py: no such file"), "{err}");
    assert!(err.contains("calc.py, test_calc.py"), "{err}");
    assert!(!err.contains("the same"), "{err}");
    let run = sb.call(
        "edit",
        r#"{"file_path":"pkg/other.py","old_string":"a","new_string":"b"}"#,
    )?;
    assert!(run.err().contains("pkg are: mod.py"), "{}", run.stderr);
    assert!(!sb.repo().join("calculate.py").exists());
    Ok(())
}

/// Text copied from `read`'s output carries its line numbers; written back as it is, it would
/// break the file. Only text numbered exactly as `read` numbers it, every line, counting up, is
/// taken for a copy.
#[test]
fn write_and_edit_take_reads_line_numbers_out_of_copied_text() -> TestResult {
    let sb = Sandbox::new()?;
    let out = sb
        .call(
            "write",
            r#"{"file_path":"calc.py","content":"     1\tdef add(a, b):\n     2\t    return a + b\n"}"#,
        )?
        .out()
        .to_string();
    assert!(out.contains("line numbers"), "{out}");
    assert_eq!(sb.read("calc.py")?, "def add(a, b):\n    return a + b\n");
    let out = sb
        .call(
            "edit",
            r#"{"file_path":"calc.py","old_string":"     2\t    return a + b","new_string":"     2\t    return a - b"}"#,
        )?
        .out()
        .to_string();
    assert!(out.contains("line numbers"), "{out}");
    assert_eq!(sb.read("calc.py")?, "def add(a, b):\n    return a - b\n");
    // Numbers of the file's own, or not counting up, or not in read's width: kept as written.
    for content in [
        "1\tone\n2\ttwo\n",
        "     1\tone\n     3\tthree\n",
        "     1\tone\nplain\n",
    ] {
        let input = serde_json::json!({"file_path": "t.tsv", "content": content}).to_string();
        let out = sb.call("write", &input)?.out().to_string();
        assert!(!out.contains("line numbers"), "{out}");
        assert_eq!(sb.read("t.tsv")?, content);
    }
    Ok(())
}

#[test]
fn edit_points_out_crlf_line_endings() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("w.txt", "a\r\nb\r\n")?;
    let run = sb.call(
        "edit",
        r#"{"file_path":"w.txt","old_string":"a\nb","new_string":"c"}"#,
    )?;
    assert!(run.err().contains("CRLF"), "{}", run.stderr);
    Ok(())
}

#[test]
fn ls_lists_directories_first_with_sizes() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("src/main.rs", "fn main() {}\n")?;
    sb.write("Cargo.toml", "[package]\n")?;
    let out = sb.call("ls", "{}")?.out().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [".git/", "src/", "Cargo.toml  (10 B)"]);
    let out = sb.call("ls", r#"{"path":"src"}"#)?.out().to_string();
    assert_eq!(out, "main.rs  (13 B)\n");
    assert!(
        sb.call("ls", r#"{"path":"nope"}"#)?
            .err()
            .contains("no such file")
    );
    Ok(())
}

#[test]
fn write_and_edit_replace_files_whole_keeping_mode_and_links() -> TestResult {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sb = Sandbox::new()?;
    let script = sb.write("run.sh", "#!/bin/sh\necho one\n")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let before = std::fs::metadata(&script)?.ino();
    let run = sb.call(
        "edit",
        r#"{"file_path":"run.sh","old_string":"one","new_string":"two"}"#,
    )?;
    assert!(run.ok, "{run:?}");
    let after = std::fs::metadata(&script)?;
    // A new file was renamed over the old one (never truncated in place), with the old mode.
    assert_ne!(after.ino(), before, "edited in place");
    assert_eq!(after.permissions().mode() & 0o777, 0o755);
    assert_eq!(sb.read("run.sh")?, "#!/bin/sh\necho two\n");
    // Through a link: the file it names changes, and the link stays a link.
    std::os::unix::fs::symlink("run.sh", sb.repo().join("link.sh"))?;
    let run = sb.call(
        "write",
        r##"{"file_path":"link.sh","content":"#!/bin/sh\necho three\n"}"##,
    )?;
    assert!(run.ok, "{run:?}");
    assert!(
        std::fs::symlink_metadata(sb.repo().join("link.sh"))?
            .file_type()
            .is_symlink()
    );
    assert_eq!(sb.read("run.sh")?, "#!/bin/sh\necho three\n");
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(sb.repo())?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    Ok(())
}

#[test]
fn a_read_only_tool_runs_without_its_plugins_write_access() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("keep.txt", "original")?;
    // The plugin is granted read-write, but `sneak` declares itself read-only: it gets a
    // read-only view of the worktree, whatever it tries.
    sb.evil_plugin(
        "fs = \"read-write\"",
        "[plugins.evil]\nfs = \"read-write\"\n",
    )?;
    let run = sb.call("sneak", r#"{"path":"keep.txt","content":"changed"}"#)?;
    assert!(run.err().contains("keep.txt"), "{run:?}");
    assert_eq!(sb.read("keep.txt")?, "original");
    // The plugin's mutating tool still has the write access it was granted.
    let write = crate::support::probe("write", "keep.txt", None, Some("changed"));
    assert!(sb.call("probe", &write)?.ok);
    assert_eq!(sb.read("keep.txt")?, "changed");
    Ok(())
}
