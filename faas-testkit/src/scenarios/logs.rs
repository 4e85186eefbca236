use faas_core::{LogMessage, LogRequest, DEFAULT_NAMESPACE};
use futures_util::StreamExt;

use crate::helpers::{ok, wait_for};
use crate::scenario::run_scenario;
use crate::subject::Subject;

/// A line the function writes shows up in its logs, with its name and
/// namespace; a follow stream receives lines written after it opened.
pub async fn logs(subject: &Subject) {
    run_scenario(subject, "logs", |s| async move {
        if !s.capabilities().logs {
            s.skip("logs");
            return;
        }
        let provider = s.provider();
        let name = s.name("logs");
        let function = s.deploy_ready(s.deployment(&name, DEFAULT_NAMESPACE)).await;
        let text = format!("conformance-line-{}", s.name("a"));
        assert_eq!(s.get_text(&function, &format!("/log/{text}")).await, "logged", "logs: /log answer");

        let request = LogRequest {
            name: name.clone(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            follow: false,
            ..LogRequest::default()
        };
        let what = format!("logs: logs(follow=false) of {function} to contain {text:?}");
        wait_for(s.settle(), &what, || async {
            let mut stream = provider.logs(request.clone()).await.map_err(|e| e.message())?;
            let mut seen = Vec::new();
            while let Some(message) = stream.next().await {
                let message = message.map_err(|e| format!("the log stream failed: {}", e.message()))?;
                if message.text.contains(&text) {
                    check_origin(&message, &name);
                    return Ok(());
                }
                seen.push(message.text);
            }
            Err(format!("{} lines, none with the text: {seen:?}", seen.len()))
        })
        .await;

        if !s.capabilities().log_follow {
            s.skip("log follow");
            return;
        }
        let follow = LogRequest { follow: true, ..request };
        let mut stream = ok("logs: logs(follow=true)", provider.logs(follow).await);
        let later = format!("conformance-later-{}", s.name("b"));
        assert_eq!(s.get_text(&function, &format!("/log/{later}")).await, "logged", "logs: /log answer");
        let found = tokio::time::timeout(s.settle(), async {
            while let Some(message) = stream.next().await {
                let message = ok("logs: the follow stream", message);
                if message.text.contains(&later) {
                    return Some(message);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(message)) => check_origin(&message, &name),
            Ok(None) => panic!("logs: the follow stream ended without the line {later:?} written after it opened"),
            Err(_) => panic!("logs: the follow stream did not deliver {later:?} within {:?}", s.settle()),
        }
    })
    .await
}

#[track_caller]
fn check_origin(message: &LogMessage, name: &str) {
    assert_eq!(message.name, name, "logs: the message's function name ({message:?})");
    assert_eq!(message.namespace, DEFAULT_NAMESPACE, "logs: the message's namespace ({message:?})");
}
