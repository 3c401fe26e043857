//! The memory store: what was learned in earlier sessions (the project's `.agent_memory.md`, the
//! user's `memory.md`) is in the first request, and chat's `# fact` remembers without a model turn.

use crate::mock_model::{MockModel, Reply, anthropic};
use crate::support::{Sandbox, TestResult};

#[test]
fn project_and_user_memory_are_in_the_first_request() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("AGENTS.md", "Project rules.\n")?;
    sb.write(
        ".agent_memory.md",
        "- 2026-11-30: the API lives in src/api\n",
    )?;
    let user = sb.tmp.path().join("config");
    std::fs::create_dir_all(&user)?;
    std::fs::write(
        user.join("memory.md"),
        "- 2026-11-29: prefers small commits\n",
    )?;
    let m = MockModel::start(vec![Reply::Sse(anthropic("Hi.", &[], (1, 0, 0)))])?;
    let env = [
        ("ANTHROPIC_BASE_URL", m.url.as_str()),
        ("ANTHROPIC_API_KEY", "test-key"),
    ];
    let run = sb.cove_env(&["run", "hello"], &env)?;
    assert!(run.ok, "{run:?}");
    let first = m.requests().first().cloned().ok_or("no request")?.json();
    let system = first["system"][0]["text"].as_str().unwrap_or_default();
    let (rules, project, user) = (
        system.find("Project rules."),
        system.find("the API lives in src/api"),
        system.find("prefers small commits"),
    );
    assert!(
        rules.is_some() && rules < project && project < user,
        "{system}"
    );
    Ok(())
}

#[test]
fn memory_files_and_agent_definitions_linked_from_outside_are_not_read() -> TestResult {
    let sb = Sandbox::new()?;
    let outside = sb.outside();
    std::fs::write(
        outside.join("agent.md"),
        "---\nname: smuggled\ndescription: from outside SMUGGLED-DEF\n---\nprompt\n",
    )?;
    std::fs::create_dir_all(outside.join("agents"))?;
    std::fs::write(
        outside.join("agents/other.md"),
        "---\nname: smuggled2\ndescription: from outside SMUGGLED-DIR\n---\nprompt\n",
    )?;
    // Links a hostile repository could carry: to the user's files, into the prompt.
    for (link, target) in [
        ("AGENTS.md", outside.join("secret.txt")),
        (".agent_memory.md", outside.join("secret.txt")),
        (".cove/agents/smuggled.md", outside.join("agent.md")),
        (".claude/agents", outside.join("agents")),
    ] {
        let path = sb.repo().join(link);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, path)?;
    }
    // A link inside the repository is followed.
    sb.write("docs/RULES.md", "Inside rules.\n")?;
    std::os::unix::fs::symlink("docs/RULES.md", sb.repo().join("CLAUDE.md"))?;
    let m = MockModel::start(vec![Reply::Sse(anthropic("Hi.", &[], (1, 0, 0)))])?;
    let env = [
        ("ANTHROPIC_BASE_URL", m.url.as_str()),
        ("ANTHROPIC_API_KEY", "test-key"),
    ];
    let run = sb.cove_env(&["run", "hello"], &env)?;
    assert!(run.ok, "{run:?}");
    let first = m.requests().first().cloned().ok_or("no request")?.json();
    let text = first.to_string();
    assert!(!text.contains("top secret"), "{text}");
    assert!(!text.contains("SMUGGLED"), "{text}");
    assert!(text.contains("Inside rules."), "{text}");
    Ok(())
}

#[test]
fn a_hash_line_in_chat_is_remembered_once_without_a_model_turn() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write(".agent_memory.md", "# Written by a person\n")?;
    let script = serde_json::json!({"turns": [{"text": "The model answered."}]});
    let run = sb.chat_on_terminal(
        &script,
        "# run the tests with make check\n#  run the tests  with make check\n\x04",
    )?;
    assert!(!run.stdout.contains("The model answered."), "{run:?}");
    assert!(run.stdout.contains("Remembered in "), "{run:?}");
    assert!(run.stdout.contains("already holds that"), "{run:?}");
    let text = sb.read(".agent_memory.md")?;
    assert!(text.starts_with("# Written by a person\n- "), "{text}");
    assert_eq!(
        text.matches(": run the tests with make check").count(),
        1,
        "{text}"
    );
    // No model turn: the session's transcript has no user message either.
    let users = sb
        .transcripts()?
        .iter()
        .filter(|l| l["type"] == "user")
        .count();
    assert_eq!(users, 0);
    Ok(())
}

#[test]
fn the_remember_tool_keeps_a_fact_once_for_the_project_or_the_user() -> TestResult {
    let sb = Sandbox::new()?;
    let fact = r#"{"fact":"Run the tests with `make check`."}"#;
    let first = sb.call("remember", fact)?;
    assert!(first.out().contains("Remembered in "), "{first:?}");
    let again = sb.call("remember", fact)?;
    assert!(again.out().contains("already holds that fact"), "{again:?}");
    let text = sb.read(".agent_memory.md")?;
    assert_eq!(
        text.matches("Run the tests with `make check`.").count(),
        1,
        "{text}"
    );
    assert!(text.starts_with("- 20"), "dated: {text}");

    let user = sb.call(
        "remember",
        r#"{"fact":"Prefers small commits.","scope":"user"}"#,
    )?;
    assert!(user.out().contains("memory.md"), "{user:?}");
    let user_file = sb.tmp.path().join("config/memory.md");
    assert!(std::fs::read_to_string(user_file)?.contains(": Prefers small commits."));
    assert!(!sb.read(".agent_memory.md")?.contains("small commits"));

    let empty = sb.call("remember", r#"{"fact":"  "}"#)?;
    assert!(empty.err().contains("`fact` is empty"), "{empty:?}");
    Ok(())
}
