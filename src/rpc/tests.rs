use super::*;

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
