// MicroBench: CRC32, record encoding, frame decoding and partition-log appends.
//
//     swift run -c release MicroBench [crc] [encode] [decode] [append]
//
// No argument runs every group. Each row is the median of 3 runs of about 1.2 s each, after a
// calibration run; MB/s uses 10^6 bytes. See docs/PERFORMANCE.md.
import Glibc

let groups: [(name: String, run: () throws -> [Row])] = [
    ("crc", benchCRC), ("encode", benchEncode), ("decode", benchDecode), ("append", benchAppend),
]

let arguments = Array(CommandLine.arguments.dropFirst())
let known = Set(groups.map(\.name))
if let unknown = arguments.first(where: { !known.contains($0) }) {
    print("unknown group '\(unknown)'; usage: MicroBench [crc] [encode] [decode] [append]")
    exit(2)
}
let selected = arguments.isEmpty ? groups : groups.filter { arguments.contains($0.name) }

print("MicroBench: median of \(Budget.runs) runs of ~\(Budget.targetSeconds) s; MB = 10^6 bytes;"
      + " spread = (max - min) / median of ops/s; cpu = process CPU time / wall time of the median run")
printHeader()
do {
    for group in selected { _ = try group.run() }
} catch {
    print("FAILED: \(error)")
    exit(1)
}
print("sink: \(sink)")
