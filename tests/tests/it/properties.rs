//! Property tests (proptest) of everything that parses text from outside: API keys, slugs,
//! job submissions (payload, priority, attempts, idempotency key, run_at), list cursors and
//! times. Each property is stated in the test's doc comment; the generators lean towards
//! the inputs that break parsers (multi-byte characters at every position, text of exactly
//! the right length, near-miss slugs, sizes around a limit).
//!
//! The pure parsers run 256 cases each; the properties that write to a database run a
//! modest number of cases (`DB_CASES`) on SQLite and, when `VELU_TEST_DATABASE_URL` is set,
//! on PostgreSQL. `PROPTEST_CASES` overrides the pure parsers' count.

use chrono::Datelike;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use velu_core::jobs::{self, JobFilter, SubmitJob};
use velu_core::keys::token::{self, KID_LEN, PREFIX, SECRET_LEN, TOKEN_LEN};
use velu_core::orgs::{self, CreateOrg, OrgFilter, OrgRef, SLUG_PATTERN};
use velu_core::pagination::PageRequest;
use velu_core::plans::Plan;
use velu_core::tasks::MAX_ATTEMPTS_LIMIT;
use velu_core::{CoreError, Principal, time};
use velu_tests::{Backend, PG_ENV, TestEnv};

/// Cases for properties that write to the database (each case is a real submit).
const DB_CASES: u32 = 32;

fn db_config() -> ProptestConfig {
    ProptestConfig {
        cases: DB_CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn pure_config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The field of an `invalid` error, `None` for any other error.
fn invalid_field(e: &CoreError) -> Option<&str> {
    match e {
        CoreError::Invalid { field, .. } => Some(field.as_str()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

fn kid() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9A-Za-z]{{{KID_LEN}}}")).expect("regex")
}

fn secret() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9A-Za-z]{{{SECRET_LEN}}}")).expect("regex")
}

/// A valid key, from random parts.
fn valid_key() -> impl Strategy<Value = String> {
    (kid(), secret()).prop_map(|(k, s)| token::format(&k, &s))
}

/// Characters of every UTF-8 width, often multi-byte.
fn any_width_char() -> impl Strategy<Value = char> {
    prop_oneof![
        2 => any::<char>(),
        1 => prop::char::range('\u{80}', '\u{7ff}'),      // 2 bytes
        1 => prop::char::range('\u{800}', '\u{ffff}'),    // 3 bytes (surrogates skipped)
        1 => prop::char::range('\u{10000}', '\u{10ffff}'), // 4 bytes
        1 => prop::sample::select(vec!['_', 'a', 'Z', '0', ' ', '\0', '\n']),
    ]
}

/// Multi-byte characters only.
fn multibyte_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::char::range('\u{80}', '\u{7ff}'),
        prop::char::range('\u{800}', '\u{ffff}'),
        prop::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

/// `PREFIX` then `chars`, cut or padded with `a` to exactly `TOKEN_LEN` bytes: the shape
/// that gets past the length and prefix checks and into the byte slicing.
fn fit_to_token_len(chars: &[char]) -> String {
    let mut s = PREFIX.to_owned();
    for &c in chars {
        if s.len() + c.len_utf8() > TOKEN_LEN {
            break;
        }
        s.push(c);
    }
    while s.len() < TOKEN_LEN {
        s.push('a');
    }
    s
}

/// `key` with the bytes `at..at + c.len_utf8()` replaced by `c` (same byte length).
fn splice_same_len(key: &str, at: usize, c: char) -> String {
    let w = c.len_utf8();
    let at = at % (key.len() - w + 1);
    format!("{}{}{}", &key[..at], c, &key[at + w..])
}

// ---------------------------------------------------------------------------------------
// API keys (velu_core::keys::token)
// ---------------------------------------------------------------------------------------

/// The shape of an accepted key, checked by hand (not by the parser under test).
fn assert_accepted_shape(text: &str, t: &token::Token) -> Result<(), TestCaseError> {
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    prop_assert_eq!(text.len(), TOKEN_LEN);
    prop_assert!(text.starts_with(PREFIX));
    prop_assert_eq!(t.kid.len(), KID_LEN);
    prop_assert_eq!(t.secret.len(), SECRET_LEN);
    prop_assert!(alnum(&t.kid) && alnum(&t.secret));
    prop_assert_eq!(
        token::format(&t.kid, &t.secret),
        text,
        "accepted text is canonical"
    );
    Ok(())
}

proptest! {
    #![proptest_config(pure_config())]

    /// `parse` never panics on any string; whatever it accepts is a canonical key.
    #[test]
    fn key_parse_never_panics_on_any_string(text in any::<String>()) {
        if let Some(t) = token::parse(&text) {
            assert_accepted_shape(&text, &t)?;
        }
    }

    /// Text that passes the length and prefix checks (exactly `TOKEN_LEN` bytes, starting
    /// with `velu_k1_`) but holds characters of any width anywhere: never a panic, and
    /// refused unless it is all ASCII.
    #[test]
    fn key_parse_never_panics_on_prefixed_text_of_key_length(
        chars in prop::collection::vec(any_width_char(), 0..80),
    ) {
        let text = fit_to_token_len(&chars);
        prop_assert_eq!(text.len(), TOKEN_LEN);
        if let Some(t) = token::parse(&text) {
            assert_accepted_shape(&text, &t)?;
        }
        if !text.is_ascii() {
            prop_assert!(token::parse(&text).is_none(), "non-ASCII accepted: {:?}", text);
        }
    }

    /// A multi-byte character written over a valid key at any byte position (keeping the
    /// byte length, so only the slicing stands between it and a panic) is refused.
    #[test]
    fn key_with_a_multibyte_char_anywhere_is_refused(
        key in valid_key(), at in 0..TOKEN_LEN, c in multibyte_char(),
    ) {
        let bad = splice_same_len(&key, at, c);
        prop_assert_eq!(bad.len(), TOKEN_LEN);
        prop_assert!(token::parse(&bad).is_none(), "{:?}", bad);
    }

    /// `format(kid, secret)` is `TOKEN_LEN` long, starts with the prefix, and parses back to
    /// the same kid and secret.
    #[test]
    fn key_format_round_trips(kid in kid(), secret in secret()) {
        let text = token::format(&kid, &secret);
        prop_assert_eq!(text.len(), TOKEN_LEN);
        prop_assert!(text.starts_with(PREFIX));
        prop_assert!(token::is_v1(&text));
        let t = token::parse(&text).expect("a formatted key parses");
        prop_assert_eq!(&t.kid, &kid);
        prop_assert_eq!(&t.secret, &secret);
        prop_assert!(!format!("{t:?}").contains(&secret), "Debug hides the secret");
    }

    /// Any single-character change of a valid key (any position, prefix, separator and
    /// checksum included; any replacement character, of any width) is refused. CRC32
    /// detects every error within one byte, and 6 base62 digits hold every CRC32 value, so
    /// this holds for every case, not just most.
    #[test]
    fn key_with_any_single_char_changed_is_refused(
        key in valid_key(), at in 0..TOKEN_LEN, c in any_width_char(),
    ) {
        let original = key.as_bytes()[at] as char;
        prop_assume!(c != original);
        let changed: String = key
            .chars()
            .enumerate()
            .map(|(i, k)| if i == at { c } else { k })
            .collect();
        prop_assert!(token::parse(&changed).is_none(), "accepted {:?} (from {:?})", changed, key);
    }

    /// One character inserted or deleted anywhere: refused.
    #[test]
    fn key_with_a_char_inserted_or_deleted_is_refused(
        key in valid_key(), at in 0..=TOKEN_LEN, c in any_width_char(), insert in any::<bool>(),
    ) {
        let mut chars: Vec<char> = key.chars().collect();
        if insert {
            chars.insert(at, c);
        } else {
            chars.remove(at.min(TOKEN_LEN - 1));
        }
        let changed: String = chars.into_iter().collect();
        prop_assert!(token::parse(&changed).is_none(), "{:?}", changed);
    }
}

/// Every position, every UTF-8 width: a multi-byte character over a valid key is refused
/// (the exhaustive twin of `key_with_a_multibyte_char_anywhere_is_refused`).
#[test]
fn key_with_a_multibyte_char_at_every_position_is_refused() {
    let key = token::format(&token::new_kid(), &token::new_secret());
    for c in ['é', '€', '𝄞', '\u{7ff}', '\u{10ffff}'] {
        for at in 0..=TOKEN_LEN - c.len_utf8() {
            let bad = splice_same_len(&key, at, c);
            assert_eq!(bad.len(), TOKEN_LEN);
            assert!(token::parse(&bad).is_none(), "{c:?} at byte {at}: {bad:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Slugs (velu_core::orgs::validate_slug)
// ---------------------------------------------------------------------------------------

/// The documented slug rule, written out by hand: `^[a-z0-9][a-z0-9-]{1,62}$`.
fn slug_rule(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    (2..=63).contains(&bytes.len())
        && ok(bytes[0])
        && bytes[1..].iter().all(|&b| ok(b) || b == b'-')
        && !orgs::RESERVED_SLUGS.contains(&s)
}

fn slugish() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        // Valid slugs, and the same with one near-miss appended or prepended.
        2 => proptest::string::string_regex("[a-z0-9][a-z0-9-]{1,62}").expect("regex"),
        2 => (
            proptest::string::string_regex("[a-z0-9][a-z0-9-]{0,64}").expect("regex"),
            prop::sample::select(vec!["", "\n", "\r\n", " ", "-", "_", "A", "é", "\0", "ﬁ", "ı"]),
            any::<bool>(),
        )
            .prop_map(|(s, extra, front)| if front { format!("{extra}{s}") } else { format!("{s}{extra}") }),
        1 => proptest::string::string_regex("[a-zA-Z0-9_ .é-]{0,70}").expect("regex"),
        // Route words, which are reserved (and near misses of them, which are not).
        1 => (prop::sample::select(orgs::RESERVED_SLUGS.to_vec()), prop::sample::select(vec!["", "-co", "2"]))
            .prop_map(|(w, tail)| format!("{w}{tail}")),
    ]
}

proptest! {
    #![proptest_config(pure_config())]

    /// `validate_slug` never panics, accepts exactly the strings that match the documented
    /// pattern (checked by hand) and are not reserved route words, and refuses the rest as
    /// `invalid` on the `slug` field.
    #[test]
    fn slug_check_is_exactly_the_documented_pattern(s in slugish()) {
        prop_assert_eq!(SLUG_PATTERN, "^[a-z0-9][a-z0-9-]{1,62}$", "the rule these tests encode");
        match orgs::validate_slug(&s) {
            Ok(()) => prop_assert!(slug_rule(&s), "accepted {:?}", s),
            Err(e) => {
                prop_assert!(!slug_rule(&s), "refused {:?}: {}", s, e);
                prop_assert_eq!(e.code(), "invalid");
                prop_assert_eq!(invalid_field(&e), Some("slug"));
            }
        }
    }

    /// `validate_name` never panics; what it accepts is trimmed, non-empty, at most 200
    /// characters and free of control characters.
    #[test]
    fn org_name_check_never_panics(s in any::<String>()) {
        if let Ok(name) = orgs::validate_name(&s) {
            prop_assert_eq!(name.as_str(), s.trim());
            prop_assert!(!name.is_empty());
            prop_assert!(name.chars().count() <= orgs::MAX_NAME_CHARS);
            prop_assert!(!name.chars().any(char::is_control));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Times (velu_core::time)
// ---------------------------------------------------------------------------------------

/// RFC 3339 texts built from parts: years 0001 to 9998 (so the instant stays within
/// 0001..=9999 in UTC, which RFC 3339 can print), offsets up to ±23:59, 0 to 9 fraction
/// digits, `t`/`z` lower case.
fn rfc3339ish() -> impl Strategy<Value = String> {
    (
        1u32..=9998,
        1u32..=12,
        1u32..=28,
        0u32..=23,
        0u32..=59,
        0u32..=59,
        proptest::string::string_regex("(\\.[0-9]{1,9})?").expect("regex"),
        prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (any::<bool>(), 0u32..=23, 0u32..=59)
                .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
        prop::sample::select(vec!['T', 't']),
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off, t)| {
            format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

proptest! {
    #![proptest_config(pure_config())]

    /// `time::parse` never panics on any string; what it accepts has microsecond precision
    /// and a year in `MIN_YEAR..=MAX_YEAR`; a refusal is `invalid` naming the field.
    #[test]
    fn time_parse_never_panics(s in prop_oneof![any::<String>(), rfc3339ish()]) {
        match time::parse("run_at", &s) {
            Ok(t) => {
                prop_assert_eq!(t.timestamp_subsec_nanos() % 1000, 0);
                prop_assert!((time::MIN_YEAR..=time::MAX_YEAR).contains(&t.year()), "{}", s);
            }
            Err(e) => prop_assert_eq!(invalid_field(&e), Some("run_at")),
        }
    }

    /// Well-formed RFC 3339 texts whose instant falls in `MIN_YEAR..=MAX_YEAR` (UTC) parse;
    /// the value is truncated to microseconds, and what `time::format` prints parses back
    /// to the same instant. Texts outside those years are refused as `invalid`.
    #[test]
    fn time_parse_and_format_round_trip(s in rfc3339ish()) {
        let year: i32 = s[..4].parse().unwrap();
        match time::parse("t", &s) {
            Ok(t) => {
                prop_assert!((time::MIN_YEAR..=time::MAX_YEAR).contains(&t.year()));
                prop_assert_eq!(t.timestamp_subsec_nanos() % 1000, 0);
                let printed = time::format(&t);
                prop_assert!(printed.ends_with('Z'), "{}", printed);
                prop_assert_eq!(time::parse("t", &printed).ok(), Some(t), "{} -> {}", s, printed);
            }
            Err(e) => {
                // Only the year bound refuses these (an offset may move the instant across
                // a year boundary, hence the margin of one year).
                prop_assert!(year <= time::MIN_YEAR || year >= time::MAX_YEAR, "refused {:?}: {}", s, e);
                prop_assert_eq!(invalid_field(&e), Some("t"));
            }
        }
    }

    /// `parse_within` accepts a time exactly when it lies at most `horizon` after `at`
    /// (to the microsecond), for both horizons, and refuses the rest as `invalid`.
    #[test]
    fn time_horizon_is_exact(
        for_key in any::<bool>(),
        micros in prop_oneof![
            -400i64 * 86_400_000_000..4000 * 86_400_000_000,
            -5_000_000i64..5_000_000,
            -5i64..=5,
        ],
    ) {
        let (field, horizon) = if for_key {
            ("expires_at", time::KEY_EXPIRY_HORIZON)
        } else {
            ("run_at", time::RUN_AT_HORIZON)
        };
        let at = time::now();
        // Near the boundary for the small offsets, anywhere for the large ones.
        let offset = if micros.abs() <= 5_000_000 {
            horizon + chrono::Duration::microseconds(micros)
        } else {
            chrono::Duration::microseconds(micros)
        };
        let text = time::format(&(at + offset));
        match time::parse_within(field, &text, at, horizon) {
            Ok(t) => {
                prop_assert!(offset <= horizon, "{} accepted ({} after at)", text, offset);
                prop_assert_eq!(t, at + offset);
            }
            Err(e) => {
                prop_assert!(offset > horizon, "{} refused: {}", text, e);
                prop_assert_eq!(invalid_field(&e), Some(field));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Job submissions (velu_core::jobs::submit_job, whose checks are private: tested through
// the public operation, on a real database)
// ---------------------------------------------------------------------------------------

/// A world with one org on `plan`; `None` when the backend is not configured.
async fn world(backend: Backend, plan: &str) -> Option<TestEnv> {
    let env = TestEnv::start(backend).await?;
    orgs::create_org(
        env.velu(),
        &Principal::operator(),
        &CreateOrg {
            name: "Props".into(),
            slug: "props".into(),
            plan: Some(plan.into()),
        },
    )
    .await
    .expect("create org");
    Some(env)
}

fn job(payload: Value) -> SubmitJob {
    SubmitJob {
        task: "echo".into(),
        payload,
        ..SubmitJob::default()
    }
}

/// JSON values of every kind; strings hold any character (NUL and other controls too).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "\0",
            "\u{0}x",
            "\\u0000",
            "\u{fffd}",
            "\u{10ffff}",
            "'; --"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// U+0000 in any string or key, at any depth.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Equal JSON, except that two floats may differ by a few units in the last place.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            // Exact: PostgreSQL may print a float as an integer (1e15 as 1000000000000000),
            // so compare values, not representations.
            x == y
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Top-level payload keys that are not reserved (do not start with `_`).
fn public_key() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("not reserved", |k| !k.starts_with('_'))
}

fn object_payload() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(public_key(), json_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

/// Runs one property with `runner`, each case on `rt`; panics with the minimal failing
/// input.
fn check<'a, S: Strategy>(
    rt: &tokio::runtime::Runtime,
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> std::pin::Pin<Box<dyn Future<Output = Result<(), TestCaseError>> + 'a>>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(db_config());
    if let Err(e) = runner.run(&strategy, |v| rt.block_on(test(v))) {
        panic!("property `{name}` failed: {e}");
    }
}

/// The submission properties, on one world of `backend`:
///
/// * a payload that is not a JSON object is refused: `invalid` on `payload`;
/// * an object with a top-level key starting with `_` is refused: `invalid` on `payload`;
/// * an object with U+0000 in any string or key, at any depth, is refused: `invalid` on
///   `payload` (PostgreSQL cannot store it);
/// * any other object (arbitrary keys, nested values, strings with other control
///   characters, any Unicode) is accepted and stored as given (read back equal; floats to
///   the last bit or so), never an `internal` error;
/// * around the plan's payload limit, a payload is accepted exactly when its JSON size is
///   at most the limit, else `payload_too_large`;
/// * any `priority` is accepted exactly in -100..=100, else `invalid` on `priority`;
/// * any `max_attempts` is accepted exactly in 1..=25, else `invalid` on `max_attempts`;
/// * any idempotency key is accepted or refused as `invalid` on `idempotency_key` (never
///   another error); an ASCII one is accepted exactly when 1 to 200 long without control
///   characters;
/// * any `run_at` text is accepted or refused as `invalid` on `run_at`; well-formed RFC 3339
///   is accepted;
/// * an unknown task kind is `invalid` on `task`.
fn submission_properties(backend: Backend) {
    let rt = velu_tests::runtime();
    let Some(env) = rt.block_on(world(backend, "hero")) else {
        eprintln!("skipped: {PG_ENV} is not set");
        return;
    };
    let org = OrgRef::new("props");
    let who = Principal::operator();
    let submit = |input: SubmitJob| {
        let (env, org, who) = (env.clone(), org.clone(), who.clone());
        async move { jobs::submit_job(env.velu(), &who, &org, &input).await }
    };
    // The futures below borrow these for the length of the function.
    let submit = &submit;
    let (env_ref, who_ref, org_ref) = (&env, &who, &org);

    check(
        &rt,
        "non-object payloads are refused",
        json_value().prop_filter("not an object", |v| !v.is_object()),
        |payload| {
            Box::pin(async move {
                let err = submit(job(payload)).await.expect_err("refused");
                prop_assert_eq!(invalid_field(&err), Some("payload"), "{}", err);
                Ok(())
            })
        },
    );

    check(
        &rt,
        "reserved top-level keys are refused",
        (object_payload(), "_[^\\x00]{0,12}", json_value()),
        |(mut payload, key, value)| {
            Box::pin(async move {
                payload.as_object_mut().unwrap().insert(key, value);
                let err = submit(job(payload)).await.expect_err("refused");
                prop_assert_eq!(invalid_field(&err), Some("payload"), "{}", err);
                Ok(())
            })
        },
    );

    check(
        &rt,
        "other objects are accepted and stored as given",
        object_payload(),
        |payload| {
            Box::pin(async move {
                let outcome = submit(job(payload.clone())).await;
                if has_nul(&payload) {
                    // PostgreSQL cannot store U+0000: refused on both backends alike.
                    let err = outcome.expect_err("NUL refused");
                    prop_assert_eq!(invalid_field(&err), Some("payload"), "{}", err);
                    return Ok(());
                }
                let done = outcome.map_err(|e| {
                    TestCaseError::fail(format!("refused {payload}: {e} ({})", e.code()))
                })?;
                // Floats compare by value, bit for bit: see `payload_floats_are_stored_exactly`.
                prop_assert!(
                    same_json(&done.job.payload, &payload),
                    "{} stored as {}",
                    payload,
                    done.job.payload
                );
                let shown = jobs::show_job(env_ref.velu(), who_ref, org_ref, &done.job.id)
                    .await
                    .expect("show");
                prop_assert!(
                    same_json(&shown.job.payload, &payload),
                    "{} read back as {}",
                    payload,
                    shown.job.payload
                );
                Ok(())
            })
        },
    );

    let limit = Plan::Hero.limits().payload_bytes as usize;
    let overhead = r#"{"s":""}"#.len();
    check(
        &rt,
        "payload size limit is exact",
        (limit - overhead - 40)..(limit - overhead + 40),
        |n| {
            Box::pin(async move {
                let payload = json!({ "s": "x".repeat(n) });
                let size = serde_json::to_vec(&payload).unwrap().len();
                match submit(job(payload)).await {
                    Ok(_) => prop_assert!(size <= limit, "{size} bytes accepted, limit {limit}"),
                    Err(e) => {
                        prop_assert!(size > limit, "{size} bytes refused: {e}");
                        prop_assert_eq!(e.code(), "payload_too_large");
                    }
                }
                Ok(())
            })
        },
    );

    check(
        &rt,
        "priority range",
        prop_oneof![any::<i32>(), -110i32..=110],
        |priority| {
            Box::pin(async move {
                let input = SubmitJob {
                    priority: Some(priority),
                    ..job(json!({}))
                };
                match submit(input).await {
                    Ok(done) => {
                        prop_assert!((-100..=100).contains(&priority));
                        prop_assert_eq!(done.job.priority, priority);
                    }
                    Err(e) => {
                        prop_assert!(!(-100..=100).contains(&priority), "{priority}: {e}");
                        prop_assert_eq!(invalid_field(&e), Some("priority"));
                    }
                }
                Ok(())
            })
        },
    );

    check(
        &rt,
        "max_attempts range",
        prop_oneof![any::<u32>(), 0u32..=30],
        |n| {
            Box::pin(async move {
                let input = SubmitJob {
                    max_attempts: Some(n),
                    ..job(json!({}))
                };
                match submit(input).await {
                    Ok(done) => {
                        prop_assert!((1..=MAX_ATTEMPTS_LIMIT).contains(&n));
                        prop_assert_eq!(done.job.max_attempts as u32, n);
                    }
                    Err(e) => {
                        prop_assert!(!(1..=MAX_ATTEMPTS_LIMIT).contains(&n), "{n}: {e}");
                        prop_assert_eq!(invalid_field(&e), Some("max_attempts"));
                    }
                }
                Ok(())
            })
        },
    );

    check(
        &rt,
        "idempotency keys: accepted or invalid, never another error",
        prop_oneof![
            any::<String>(),
            // Long keys of multi-byte characters: 200 characters are 400 to 800 bytes.
            (multibyte_char(), 150usize..=210)
                .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
        ],
        |key| {
            Box::pin(async move {
                let input = SubmitJob {
                    idempotency_key: Some(key.clone()),
                    ..job(json!({}))
                };
                match submit(input).await {
                    Ok(done) => {
                        prop_assert_eq!(done.job.idempotency_key.as_deref(), Some(key.as_str()))
                    }
                    Err(e) => prop_assert_eq!(
                        invalid_field(&e),
                        Some("idempotency_key"),
                        "{:?}: {} ({})",
                        key,
                        e,
                        e.code()
                    ),
                }
                Ok(())
            })
        },
    );

    check(
        &rt,
        "ASCII idempotency keys: 1 to 200 printable",
        "[\\x00-\\x7f]{0,210}",
        |key| {
            Box::pin(async move {
                let rule = (1..=200).contains(&key.len()) && !key.chars().any(char::is_control);
                let input = SubmitJob {
                    idempotency_key: Some(key.clone()),
                    ..job(json!({}))
                };
                match submit(input).await {
                    Ok(_) => prop_assert!(rule, "accepted {:?}", key),
                    Err(e) => {
                        prop_assert!(!rule, "refused {:?}: {}", key, e);
                        prop_assert_eq!(invalid_field(&e), Some("idempotency_key"));
                    }
                }
                Ok(())
            })
        },
    );

    check(
        &rt,
        "run_at: accepted or invalid",
        prop_oneof![any::<String>(), rfc3339ish()],
        |text| {
            Box::pin(async move {
                let parses = time::parse("run_at", &text).is_ok();
                let input = SubmitJob {
                    run_at: Some(text.clone()),
                    ..job(json!({}))
                };
                match submit(input).await {
                    Ok(_) => prop_assert!(parses, "accepted {:?}", text),
                    Err(e) => {
                        prop_assert_eq!(invalid_field(&e), Some("run_at"), "{:?}: {}", text, e);
                    }
                }
                Ok(())
            })
        },
    );

    check(
        &rt,
        "unknown task kinds",
        {
            let env = env.clone();
            any::<String>().prop_filter("not a kind", move |t| env.velu().tasks().get(t).is_none())
        },
        |task| {
            Box::pin(async move {
                let input = SubmitJob {
                    task,
                    ..job(json!({}))
                };
                let err = submit(input).await.expect_err("refused");
                prop_assert_eq!(invalid_field(&err), Some("task"), "{}", err);
                Ok(())
            })
        },
    );

    rt.block_on(env.finish());
}

/// A payload's floats come back bit for bit (submit, then show). Failed before serde_json's
/// `float_roundtrip` feature was switched on for the workspace: reading the stored JSON
/// back changed the last bit (found by `other objects are accepted and stored as given`,
/// e.g. -1.6867419865182275e188 came back as -1.6867419865182278e188).
#[test]
fn payload_floats_are_stored_exactly() {
    let rt = velu_tests::runtime();
    let env = rt
        .block_on(world(Backend::Sqlite, "hero"))
        .expect("sqlite world");
    let (who, org) = (Principal::operator(), OrgRef::new("props"));
    let result = TestRunner::new(db_config()).run(
        &prop_oneof![
            Just(-1.6867419865182275e188),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ],
        |f| {
            rt.block_on(async {
                let payload = json!({ "f": f });
                let done = jobs::submit_job(env.velu(), &who, &org, &job(payload.clone()))
                    .await
                    .expect("accepted");
                let shown = jobs::show_job(env.velu(), &who, &org, &done.job.id)
                    .await
                    .expect("show");
                prop_assert_eq!(
                    shown.job.payload["f"].as_f64(),
                    Some(f),
                    "stored {}",
                    shown.job.payload
                );
                Ok(())
            })
        },
    );
    rt.block_on(env.finish());
    if let Err(e) = result {
        panic!("{e}");
    }
}

mod submission_properties {
    #[test]
    fn sqlite() {
        super::submission_properties(velu_tests::Backend::Sqlite);
    }

    #[test]
    #[cfg_attr(
        not(velu_pg),
        ignore = "VELU_TEST_DATABASE_URL was not set when the tests were built"
    )]
    fn postgres() {
        super::submission_properties(velu_tests::Backend::Postgres);
    }
}

// ---------------------------------------------------------------------------------------
// Cursors (velu_core::pagination, through the public list operations)
// ---------------------------------------------------------------------------------------

/// base64url without padding (the cursor encoding), to forge cursors.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn cursorish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| b64url(&b)),
        // Well-formed cursor bodies for some list with made-up filter fingerprints.
        (
            prop::sample::select(vec!["orgs", "jobs", "keys", "audit", ""]),
            "[A-Za-z0-9_-]{0,12}",
            prop::collection::vec(any::<String>(), 0..3),
        )
            .prop_map(|(l, f, k)| b64url(json!({ "l": l, "f": f, "k": k }).to_string().as_bytes())),
        json_value().prop_map(|v| b64url(v.to_string().as_bytes())),
    ]
    .prop_filter("empty means no cursor", |c| !c.is_empty())
}

/// Any cursor a list did not hand out (arbitrary text, base64 of arbitrary bytes or JSON,
/// well-formed bodies with a made-up filter fingerprint) is refused as `invalid` on
/// `cursor` by the org list and the job list, never a panic or another error.
#[test]
fn made_up_cursors_are_refused() {
    let rt = velu_tests::runtime();
    let env = rt
        .block_on(world(Backend::Sqlite, "hero"))
        .expect("sqlite world");
    let who = Principal::operator();
    check(&rt, "made-up cursors", cursorish(), |cursor| {
        let (env, who) = (env.clone(), who.clone());
        Box::pin(async move {
            let page = PageRequest {
                limit: Some(10),
                cursor: Some(cursor.clone()),
            };
            let err = orgs::list_orgs(env.velu(), &who, &OrgFilter::default(), &page)
                .await
                .expect_err("org list refuses it");
            prop_assert_eq!(invalid_field(&err), Some("cursor"), "{:?}: {}", cursor, err);
            let err = jobs::list_jobs(
                env.velu(),
                &who,
                &OrgRef::new("props"),
                &JobFilter::default(),
                &page,
            )
            .await
            .expect_err("job list refuses it");
            prop_assert_eq!(invalid_field(&err), Some("cursor"), "{:?}: {}", cursor, err);
            Ok(())
        })
    });
    rt.block_on(env.finish());
}

// ---------------------------------------------------------------------------------------
// Time horizons, through the operations
// ---------------------------------------------------------------------------------------

/// Through the operations: a job's `run_at` more than `RUN_AT_HORIZON` ahead and a key's
/// expiry more than `KEY_EXPIRY_HORIZON` ahead are refused as `invalid` on the field; times
/// within the horizon (a day of margin either side, for the clock moving during the call)
/// are accepted.
#[test]
fn operations_hold_the_time_horizons() {
    use velu_core::keys::{CreateKey, KeyOwner, create_key};
    let rt = velu_tests::runtime();
    let env = rt
        .block_on(world(Backend::Sqlite, "hero"))
        .expect("sqlite world");
    let who = Principal::operator();
    let org = OrgRef::new("props");
    let names = std::sync::atomic::AtomicU32::new(0);
    let day = chrono::Duration::days(1);
    // Offsets in days from the horizon: negative within, positive past it.
    let strategy = (any::<bool>(), prop_oneof![-300i64..=-1, 1i64..=3000]);
    check(&rt, "time horizons", strategy, |(for_key, days)| {
        let (env, who, org, names) = (&env, &who, &org, &names);
        Box::pin(async move {
            let (field, horizon) = if for_key {
                ("expires_at", time::KEY_EXPIRY_HORIZON)
            } else {
                ("run_at", time::RUN_AT_HORIZON)
            };
            let margin = if days < 0 { -day } else { day };
            let at = time::format(&(time::now() + horizon + chrono::Duration::days(days) + margin));
            let outcome = if for_key {
                let n = names.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let input = CreateKey {
                    name: format!("k{n}"),
                    role: Some("viewer".into()),
                    expires_at: Some(at.clone()),
                    ..CreateKey::default()
                };
                create_key(env.velu(), who, &KeyOwner::Org(org.clone()), &input)
                    .await
                    .map(drop)
            } else {
                let input = SubmitJob {
                    run_at: Some(at.clone()),
                    ..job(json!({}))
                };
                jobs::submit_job(env.velu(), who, org, &input)
                    .await
                    .map(drop)
            };
            match outcome {
                Ok(()) => prop_assert!(days < 0, "{} {} accepted", field, at),
                Err(e) => {
                    prop_assert!(days > 0, "{} {} refused: {}", field, at, e);
                    prop_assert_eq!(invalid_field(&e), Some(field), "{}", e);
                }
            }
            Ok(())
        })
    });
    rt.block_on(env.finish());
}
