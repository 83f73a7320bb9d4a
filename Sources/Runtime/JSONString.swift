/// A JSON string literal (RFC 8259 §7), the one writer the JSON log lines and the dashboard's JSON
/// answers share: quotes, backslashes, every control character and DEL escaped, and U+2028/U+2029
/// too, so a log line stays one line for JavaScript readers. `htmlSafe` also escapes `<`, so the
/// text can sit inside an HTML page's `<script>` without ending it.
enum JSONString {
    static func append(_ text: String, htmlSafe: Bool = false, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            case "<" where htmlSafe: out += "\\u003c"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    static func quoted(_ text: String, htmlSafe: Bool = false) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 2)
        append(text, htmlSafe: htmlSafe, to: &out)
        return out
    }
}
