/// A JSON value for the dashboard's `Content-Type: application/json` answers (reference §7.2:
/// the original answered the template's variables as JSON). Objects keep their key order so the
/// answers are stable and readable.
public indirect enum JSONValue: Equatable, Sendable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.text == b.text }

    /// Compact JSON text.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    /// The value of `key` in an object (tests and callers reading an answer back).
    public subscript(_ key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    func write(to out: inout String) {
        switch self {
        case .string(let s): Self.quote(s, into: &out)
        case .int(let n): out += String(n)
        case .double(let d): out += d.isFinite ? String(d) : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// HTML-safe (`<` escaped): these answers may be embedded in a page.
    static func quote(_ s: String, into out: inout String) { JSONString.append(s, htmlSafe: true, to: &out) }
}

/// HTML building for the dashboard's server-rendered pages: escaping, tables, the shared layout.
/// Every text that came from outside (topic names, config text, log lines, ZooKeeper data) goes
/// through `escape`.
public enum HTML {
    /// Escapes `&<>"'` for text and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Percent-encodes one path segment or query value (RFC 3986 unreserved kept).
    public static func urlComponent(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }

    /// One table cell: the HTML shown, and an optional sort key and `data-value` (the raw number
    /// the tests compare with `stats`).
    public struct Cell: Sendable {
        public var html: String
        public var sortKey: String?
        public var dataName: String?

        /// Text, escaped.
        public init(_ text: String) { html = HTML.escape(text) }
        /// Raw HTML (already escaped by the caller).
        public init(html: String, sortKey: String? = nil) {
            self.html = html
            self.sortKey = sortKey
        }
        /// A number, right-aligned, sortable, with `data-name`/`data-value` when named.
        public init(number: Int64, name: String? = nil) {
            html = HTML.grouped(number)
            sortKey = String(number)
            dataName = name
        }
        public init(decimal: Double, name: String? = nil) {
            html = HTML.fixed(decimal)
            sortKey = String(decimal)
            dataName = name
        }
    }

    /// A sortable table (the layout's script sorts by a click on a header; without JavaScript it
    /// is a plain table). `id` names it for tests.
    public static func table(id: String, headers: [String], rows: [[Cell]], rowAttributes: [String]? = nil) -> String {
        var out = "<table class=\"sortable\" id=\"\(escape(id))\"><thead><tr>"
        for header in headers { out += "<th>\(escape(header))</th>" }
        out += "</tr></thead><tbody>"
        if rows.isEmpty { out += "<tr><td colspan=\"\(max(1, headers.count))\" class=\"empty\">none</td></tr>" }
        for (i, row) in rows.enumerated() {
            out += "<tr\(rowAttributes.map { " " + $0[i] } ?? "")>"
            for cell in row {
                var attributes = ""
                if let key = cell.sortKey { attributes += " data-sort=\"\(escape(key))\" class=\"num\"" }
                if let name = cell.dataName { attributes += " data-name=\"\(escape(name))\" data-value=\"\(escape(cell.sortKey ?? ""))\"" }
                out += "<td\(attributes)>\(cell.html)</td>"
            }
            out += "</tr>"
        }
        return out + "</tbody></table>"
    }

    /// A two-column key/value table; values are cells so numbers carry their `data-value`.
    public static func facts(id: String, _ rows: [(String, Cell)]) -> String {
        var out = "<table class=\"facts\" id=\"\(escape(id))\"><tbody>"
        for (key, cell) in rows {
            var attributes = ""
            if let name = cell.dataName { attributes = " data-name=\"\(escape(name))\" data-value=\"\(escape(cell.sortKey ?? ""))\"" }
            out += "<tr><th>\(escape(key))</th><td\(attributes)>\(cell.html)</td></tr>"
        }
        return out + "</tbody></table>"
    }

    /// `1234567` → `1,234,567`.
    public static func grouped(_ n: Int64) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Two decimals.
    public static func fixed(_ d: Double) -> String {
        guard d.isFinite else { return "n/a" }
        let scaled = (d * 100).rounded()
        let whole = Int64(scaled / 100)
        let cents = Int64(abs(scaled.truncatingRemainder(dividingBy: 100)))
        return (d < 0 && whole == 0 ? "-" : "") + grouped(whole) + "." + (cents < 10 ? "0" : "") + String(cents)
    }

    /// `1536` → `1.50 KiB`.
    public static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : fixed(value) + " " + units[unit]
    }

    /// The navigation entries: path and label.
    static let navigation: [(String, String)] = [
        ("/", "Overview"), ("/topics", "Topics"), ("/cluster", "Cluster"), ("/config", "Config"),
        ("/stats", "Stats"), ("/logging", "Logging"),
    ]

    /// The shared page: nav bar with the current entry marked, a title, the body, the sorter.
    public static func page(title: String, active: String, brokerId: Int, version: String, body: String) -> String {
        var nav = ""
        for (path, label) in navigation {
            let current = path == active ? " class=\"active\"" : ""
            nav += "<a href=\"\(path)\"\(current)>\(label)</a>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
            <title>\(escape(title)) · MetaQ broker \(brokerId)</title>
            <link rel="icon" href="data:,">
            <style>\(style)</style></head>
            <body><header><span class="brand">MetaQ <small>broker \(brokerId) · \(escape(version))</small></span><nav>\(nav)</nav></header>
            <main><h1>\(escape(title))</h1>
            \(body)
            </main><script>\(sorter)</script></body></html>
            """
    }

    static let style = """
        *{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f4f6f9}\
        header{display:flex;align-items:center;gap:24px;padding:0 24px;background:#1f2a3c;color:#fff;height:48px}\
        .brand{font-weight:600;font-size:16px}.brand small{font-weight:400;color:#9fb0c8;margin-left:6px}\
        nav a{color:#cbd6e6;text-decoration:none;padding:14px 10px;display:inline-block}nav a.active,nav a:hover{color:#fff;box-shadow:inset 0 -3px #4da3ff}\
        main{padding:20px 24px;max-width:1280px}h1{font-size:20px;margin:4px 0 16px}h2{font-size:16px;margin:24px 0 8px}\
        table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:12px;min-width:320px}\
        th,td{padding:6px 12px;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}\
        thead th{background:#eef2f7;font-weight:600;cursor:pointer;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}\
        .grid table{width:100%}table.facts th{width:220px;font-weight:500;color:#4a5568}tbody tr:hover{background:#f8fafc}td.empty{color:#8a94a6;font-style:italic}\
        .grid{display:flex;flex-wrap:wrap;gap:24px}.grid>section{flex:1 1 420px}\
        .note{background:#fff7e0;border-left:4px solid #f0b400;padding:8px 12px;margin:8px 0}.bad{color:#b42318}.ok{color:#067647}\
        pre{background:#fff;padding:12px;overflow:auto;box-shadow:0 1px 2px rgba(0,0,0,.08);max-height:70vh}\
        button{background:#1f6feb;color:#fff;border:0;padding:6px 14px;border-radius:4px;cursor:pointer}\
        svg.chart{background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}a{color:#1f6feb}
        """

    /// Sorts a `table.sortable` by the clicked column (numbers by `data-sort`); nothing else.
    static let sorter = """
        document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){\
        var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';\
        rows.sort(function(a,b){var x=a.cells[i],y=b.cells[i];if(!x||!y)return 0;\
        var p=x.dataset.sort,q=y.dataset.sort;var r=(p!==undefined&&q!==undefined)?(parseFloat(p)-parseFloat(q)):x.textContent.localeCompare(y.textContent);\
        return asc?r:-r;});rows.forEach(function(r){tb.appendChild(r);});});});
        """
}
