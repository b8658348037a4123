use super::*;

fn config(default: Option<&str>, methods: &[(&str, &str)]) -> Config {
    Config {
        rpc_url: default.map(String::from),
        rpc_methods: methods
            .iter()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect(),
        ..Config::default()
    }
}

#[test]
fn the_longest_matching_pattern_wins_then_the_default() {
    let routes = Routes::new(&config(
        Some("http://all:1/rpc"),
        &[
            ("game.*", "http://game:1/rpc"),
            ("game.admin.*", "http://admin:1/rpc"),
            ("chat.report", "http://mod:1/rpc"),
        ],
    ))
    .unwrap();
    let host = |m: &str| routes.backend(m).map(|u| u.host().unwrap().to_string());
    assert_eq!(host("game.move").as_deref(), Some("game"));
    assert_eq!(host("game.admin.kick").as_deref(), Some("admin"));
    assert_eq!(host("chat.report").as_deref(), Some("mod"));
    assert_eq!(host("chat.reports").as_deref(), Some("all"));
    assert_eq!(host("other").as_deref(), Some("all"));

    let only = Routes::new(&config(None, &[("game.*", "http://game:1/rpc")])).unwrap();
    assert!(only.backend("lobby.join").is_none());
    assert!(!Routes::new(&config(None, &[])).unwrap().any());
}

#[test]
fn only_plain_http_urls_are_taken() {
    for bad in ["https://game/rpc", "game:7000/rpc", "not a url", "ftp://x/"] {
        assert!(Routes::new(&config(Some(bad), &[])).is_err(), "{bad}");
        assert!(Routes::new(&config(None, &[("m", bad)])).is_err(), "{bad}");
    }
    assert!(Routes::new(&config(None, &[("", "http://a/")])).is_err());
}

fn frame_text(outcome: &Outcome, id: Option<u64>) -> Option<String> {
    outcome.frame(id).map(|f| {
        let (head, payload) = (f[1] as usize & 0x7f, &f[..]);
        let start = match head {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        String::from_utf8(payload[start..].to_vec()).unwrap()
    })
}

#[test]
fn data_is_relayed_byte_for_byte() {
    let outcome = read_answer(br#"{"data": {"b":1,  "a":[2, 3]}}"#);
    assert_eq!(
        frame_text(&outcome, Some(4)).unwrap(),
        r#"{"id":4,"type":"result","data":{"b":1,  "a":[2, 3]}}"#
    );
    // No id: no success reply.
    assert!(frame_text(&outcome, None).is_none());
    let empty = read_answer(b"{}");
    assert_eq!(
        frame_text(&empty, Some(1)).unwrap(),
        r#"{"id":1,"type":"result","data":null}"#
    );
}

#[test]
fn backend_errors_keep_protocol_codes_and_others_become_internal() {
    let forbidden = read_answer(br#"{"error":{"code":"forbidden","message":"not your table"}}"#);
    let text = frame_text(&forbidden, None).unwrap();
    assert!(
        text.contains(r#""code":"forbidden""#) && text.contains("not your table"),
        "{text}"
    );

    let limited = read_answer(br#"{"error":{"code":"rate_limited","retry_after_ms":250}}"#);
    assert!(frame_text(&limited, Some(2))
        .unwrap()
        .contains(r#""retry_after_ms":250"#));

    let odd = read_answer(br#"{"error":{"code":"teapot"}}"#);
    assert!(frame_text(&odd, Some(3))
        .unwrap()
        .contains(r#""code":"internal""#));

    for garbage in [
        &b"<html>"[..],
        b"[1,2]",
        b"[]",
        b" [null]",
        b"{\"error\":3}",
    ] {
        let text = frame_text(&read_answer(garbage), Some(5)).unwrap();
        assert!(text.contains(r#""code":"internal""#), "{text}");
    }
}
