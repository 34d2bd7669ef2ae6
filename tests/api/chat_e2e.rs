//! The chat page in headless Chromium (tests/e2e/chat_page.cjs through playwright-core). Needs
//! `eval "$(scripts/e2e-deps.sh)"` (scripts/test.sh does it); without those paths it says so
//! and does nothing.

use crate::helpers::TestApp;

#[actix_web::test]
async fn the_chat_page_answers_in_korean_and_english_and_keeps_its_history() {
    let (Some(chromium), Some(node_path)) = (
        std::env::var_os("CONVREC_E2E_CHROMIUM"),
        std::env::var_os("CONVREC_E2E_NODE_PATH"),
    ) else {
        eprintln!("skipped: run `eval \"$(scripts/e2e-deps.sh)\"` to install Chromium and playwright-core");
        return;
    };
    let app = TestApp::builder()
        .settings(|settings| settings.security.demo_tokens = true)
        .spawn()
        .await;
    app.seed_catalog().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/chat_page.cjs");
    // Async, so this test's runtime keeps serving the page while the browser runs.
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(&app.address)
        .arg(&chromium)
        .env("NODE_PATH", &node_path)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
