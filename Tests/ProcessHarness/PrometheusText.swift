import Foundation

/// Prometheus text expositions read by the reference parser, `prometheus_client`'s
/// `text_string_to_metric_families` (PyPI; scripts/install-deps.sh installs it), in a Python
/// subprocess: what a real Prometheus ecosystem tool accepts, not what our own code thinks it wrote.
public enum PrometheusText {
    /// Every sample of each exposition (`name{k="v",…}` with labels sorted → value) and every
    /// family's type. Throws with the parser's complaint when a text does not parse, or when a
    /// sample appears twice.
    public static func parse(_ texts: [String]) throws -> (samples: [[String: Double]], types: [String: String]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-prom-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var paths: [String] = []
        for (index, text) in texts.enumerated() {
            let path = "\(directory)/scrape-\(index).txt"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            paths.append(path)
        }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {"samples": [], "types": {}}
            for path in sys.argv[1:]:
                samples = {}
                for family in text_string_to_metric_families(open(path).read()):
                    out["types"][family.name] = family.type
                    for s in family.samples:
                        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
                        key = s.name + ("{" + labels + "}" if labels else "")
                        if key in samples:
                            raise SystemExit("duplicate sample " + key)
                        samples[key] = s.value
                out["samples"].append(samples)
            print(json.dumps(out))
            """
        let scriptPath = "\(directory)/parse.py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let errorPath = "\(directory)/stderr.txt"
        let (status, output) = try ChildProcess.run("/usr/bin/env", ["python3", scriptPath] + paths, error: .file(errorPath))
        guard status == 0 else {
            let complaint = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            throw HarnessError("prometheus_client could not parse the exposition: \(complaint)\nfirst text:\n\(texts.first?.prefix(2000) ?? "")")
        }
        guard let json = try JSONSerialization.jsonObject(with: Data(output)) as? [String: Any],
              let samples = json["samples"] as? [[String: Double]], let types = json["types"] as? [String: String] else {
            throw HarnessError("unexpected parser output: \(String(decoding: output, as: UTF8.self))")
        }
        return (samples, types)
    }
}
