// metaq-fuzz: the fuzz targets of FuzzTargets as one libFuzzer binary (built by scripts/fuzz.sh
// with -sanitize=fuzzer and -DFUZZING), or, in an ordinary build, a replayer of input files —
// `metaq-fuzz crash-<hash>` runs a finding again under a debugger without libFuzzer.
import Foundation
import FuzzTargets

@main
struct MetaQFuzz {
    static func main() {
        #if FUZZING
        exit(runLibFuzzer())
        #else
        replay(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    static func replay(_ paths: [String]) {
        guard !paths.isEmpty else {
            print("usage: metaq-fuzz FILE...  (runs each input through the fuzz targets; scripts/fuzz.sh fuzzes)")
            exit(2)
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("cannot read \(path)")
                exit(1)
            }
            FuzzTargets.run(Array(data))
            print("ok \(path)")
        }
    }
}

#if FUZZING
/// libFuzzer's entry for programs with their own `main` (SwiftPM names the executable's entry
/// point itself, so libFuzzer's `main` cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

func runLibFuzzer() -> CInt {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzOne(data, count) }
}

/// One input. Also exported under libFuzzer's usual name, which its own `main` looks for when
/// the linker keeps that one.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    FuzzTargets.run(count == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: count)))
    return 0
}
#endif
