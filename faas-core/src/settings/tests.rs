use std::time::Duration;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fast,
    Safe,
}

static NAME: Setting<kind::DnsLabel> =
    Setting::new("T_NAME", kind::DnsLabel, Unset::Default("openfaas-fn"), "the namespace");
static ON: Setting<kind::Boolean> = Setting::new("T_ON", kind::Boolean, Unset::Default("true"), "turns it on");
static WAIT: Setting<kind::Duration> = Setting::new("T_WAIT", kind::Duration, Unset::Means("forever"), "how long");
static SIZE: Setting<kind::Quantity> = Setting::new("T_SIZE", kind::Quantity, Unset::Default("1Gi"), "how big");
static MODE: Setting<kind::Choice<Mode>> = Setting::new(
    "T_MODE",
    kind::Choice(&[("fast", Mode::Fast), ("safe", Mode::Safe)]),
    Unset::Default("safe"),
    "`fast` or careful",
);
static LABELS: Setting<kind::Pairs> = Setting::new("T_LABELS", kind::Pairs, Unset::Means("none"), "labels | tags");
static KEY: Setting<kind::Secret> = Setting::new("T_KEY", kind::Secret, Unset::Required, "the key");
static TABLE: Table =
    Table { provider: "test", prefix: "T_", settings: &[&NAME, &ON, &WAIT, &SIZE, &MODE, &LABELS, &KEY] };

fn field(err: Error) -> (String, String) {
    match err {
        Error::Invalid { field, reason } => (field, reason),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unset_variables_take_the_declared_defaults() {
    TABLE.check().unwrap();
    let vars = Vars::from_pairs([("T_KEY", "k"), ("T_ON", "  ")]);
    assert_eq!(vars.value(&NAME).unwrap(), "openfaas-fn");
    assert!(vars.value(&ON).unwrap(), "a blank variable is unset");
    assert_eq!(vars.get(&WAIT).unwrap(), None);
    assert_eq!(vars.value(&SIZE).unwrap(), 1073741824.0);
    assert_eq!(vars.value(&MODE).unwrap(), Mode::Safe);
    assert_eq!(vars.get(&LABELS).unwrap(), None);
    let (name, reason) = field(Vars::from_pairs::<&str, &str>([]).get(&KEY).unwrap_err());
    assert_eq!((name.as_str(), reason.as_str()), ("T_KEY", "must be set"));
    assert!(vars.value(&WAIT).is_err(), "value() of a setting without a value is an error, not a panic");
    assert_eq!((MODE.default_text(), WAIT.default_text(), KEY.default_text()), (Some("safe"), None, None));
}

#[test]
fn set_variables_are_parsed_by_the_one_parser_of_their_kind() {
    let vars = Vars::from_pairs([
        ("T_NAME", " fns "),
        ("T_ON", "Off"),
        ("T_WAIT", "1m30s"),
        ("T_SIZE", "500m"),
        ("T_MODE", "fast"),
        ("T_LABELS", "a=1, b = two,,"),
        ("T_KEY", "s3cr3t"),
    ]);
    assert_eq!(vars.value(&NAME).unwrap(), "fns");
    assert!(!vars.value(&ON).unwrap());
    assert_eq!(vars.get(&WAIT).unwrap(), Some(Duration::from_secs(90)));
    assert_eq!(vars.value(&SIZE).unwrap(), 0.5);
    assert_eq!(vars.value(&MODE).unwrap(), Mode::Fast);
    let labels = vars.get(&LABELS).unwrap().unwrap();
    assert_eq!(labels.into_iter().collect::<Vec<_>>(), [("a".into(), "1".into()), ("b".into(), "two".into())]);
    assert_eq!(vars.value(&KEY).unwrap(), "s3cr3t");
}

#[test]
fn bad_values_name_the_variable_and_the_accepted_forms() {
    let bad = |name: &str, value: &str| {
        let vars = Vars::from_pairs([(name, value)]);
        let err = match name {
            "T_NAME" => vars.get(&NAME).map(drop),
            "T_ON" => vars.get(&ON).map(drop),
            "T_WAIT" => vars.get(&WAIT).map(drop),
            "T_SIZE" => vars.get(&SIZE).map(drop),
            "T_MODE" => vars.get(&MODE).map(drop),
            _ => vars.get(&LABELS).map(drop),
        }
        .unwrap_err();
        let (field, reason) = field(err);
        assert_eq!(field, name);
        reason
    };
    assert!(bad("T_NAME", "Bad_NS").contains("DNS-1123"));
    assert!(bad("T_ON", "maybe").contains("yes, no, on or off"));
    assert!(bad("T_WAIT", "soon").contains("1m30s"));
    assert!(bad("T_SIZE", "lots").contains("128Mi"));
    assert!(bad("T_MODE", "Fast").contains("`fast` or `safe`"), "choices are case-sensitive");
    assert!(bad("T_LABELS", "novalue").contains("key=value"));
}

#[test]
fn secrets_are_never_shown() {
    let vars = Vars::from_pairs([("T_KEY", "hunter2-very-secret")]);
    assert_eq!(vars.value(&KEY).unwrap(), "hunter2-very-secret");
    for shown in [format!("{vars:?}"), format!("{KEY:?}"), format!("{TABLE:?}"), TABLE.markdown(), TABLE.help()] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert!(TABLE.entry("T_KEY").unwrap().is_secret());
    assert!(!TABLE.entry("T_NAME").unwrap().is_secret());
}

#[test]
fn the_table_renders_the_docs_and_the_help() {
    let markdown = TABLE.markdown();
    let mut lines = markdown.lines();
    assert_eq!(lines.next(), Some("| variable | type | default | meaning |"));
    assert_eq!(lines.nth(1), Some("| `T_NAME` | DNS-1123 label | `openfaas-fn` | the namespace |"));
    assert!(markdown.contains("| `T_WAIT` | duration | forever | how long |"));
    assert!(markdown.contains("| `T_MODE` | `fast` or `safe` | `safe` | `fast` or careful |"));
    assert!(markdown.contains("| `T_LABELS` | `key=value,...` | none | labels \\| tags |"), "pipes are escaped");
    assert!(markdown.contains("| `T_KEY` | secret | required | the key |"));
    let help = TABLE.help();
    assert!(help.starts_with("Settings of the test provider (environment variables):\n"));
    assert!(help.contains("  T_MODE=<fast or safe> [default: safe]\n          fast or careful\n"), "{help}");
    assert!(help.contains("  T_KEY=<secret> [required]\n"));
}

#[test]
fn documented_tables_are_checked_row_by_row() {
    let doc = |table: &str| format!("# T\n\n## Settings\n\nSome prose.\n\n{table}\nMore prose.\n\n## Next\n");
    TABLE.check_documented(&doc(&TABLE.markdown()), "## Settings").unwrap();
    let edited = TABLE.markdown().replace("how long", "how long it waits");
    let err = TABLE.check_documented(&doc(&edited), "## Settings").unwrap_err();
    assert!(err.contains("differs") && err.contains("how long it waits") && err.contains("| how long |"), "{err}");
    let short: String = TABLE.markdown().lines().take(4).map(|l| format!("{l}\n")).collect();
    assert!(TABLE.check_documented(&doc(&short), "## Settings").unwrap_err().contains("2 rows"));
    assert!(TABLE.check_documented("# T\n\n## Settings\n\nnone\n", "## Settings").unwrap_err().contains("no table"));
}

#[test]
fn broken_tables_are_caught_by_check() {
    static DOUBLE: Table = Table { provider: "x", prefix: "T_", settings: &[&NAME, &NAME] };
    assert!(field(DOUBLE.check().unwrap_err()).1.contains("twice"));
    static BAD_DEFAULT: Setting<kind::Duration> =
        Setting::new("T_BAD", kind::Duration, Unset::Default("soonish"), "oops");
    static WITH_BAD_DEFAULT: Table = Table { provider: "x", prefix: "T_", settings: &[&BAD_DEFAULT] };
    assert_eq!(field(WITH_BAD_DEFAULT.check().unwrap_err()).0, "T_BAD");
    static LOWER: Setting<kind::Text> = Setting::new("t_lower", kind::Text, Unset::Means("none"), "lower");
    static WITH_LOWER: Table = Table { provider: "x", prefix: "t_", settings: &[&LOWER] };
    assert!(WITH_LOWER.check().is_err());
}

#[test]
fn each_kind_but_text_has_a_value_it_refuses() {
    let vars = |name: &str| Vars::from_pairs([(name, TABLE.entry(name).unwrap().refused_example().unwrap())]);
    for name in ["T_NAME", "T_ON", "T_WAIT", "T_SIZE", "T_MODE", "T_LABELS"] {
        let refused = match name {
            "T_NAME" => vars(name).get(&NAME).is_err(),
            "T_ON" => vars(name).get(&ON).is_err(),
            "T_WAIT" => vars(name).get(&WAIT).is_err(),
            "T_SIZE" => vars(name).get(&SIZE).is_err(),
            "T_MODE" => vars(name).get(&MODE).is_err(),
            _ => vars(name).get(&LABELS).is_err(),
        };
        assert!(refused, "{name}");
    }
    assert_eq!(TABLE.entry("T_KEY").unwrap().refused_example(), None);
    static ODD: Setting<kind::Choice<u8>> =
        Setting::new("T_ODD", kind::Choice(&[("not-a-choice", 1)]), Unset::Means("none"), "odd");
    assert_eq!(ODD.refused_example(), None);
}

#[test]
fn unknown_variables_with_the_prefix_are_listed() {
    let names = ["T_NAME", "T_NAEM", "PATH", "T_ON", "T_"];
    assert_eq!(TABLE.unknown(names), ["T_NAEM", "T_"]);
}
