/// MD5 (RFC 1321), written out because ProtocolCore imports no crypto library. The consistent-hash
/// rebalance strategy places consumers and partitions on its ring with it (reference §3.4 step 4,
/// Java's `HashAlgorithm.computeMd5`); it is not used for anything that needs security.
public enum MD5 {
    /// The 16-byte digest of `message`.
    public static func digest<Bytes: Collection>(_ message: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
        var padded = Array(message)
        let bitLength = UInt64(truncatingIfNeeded: padded.count) &* 8
        // Padding (RFC 1321 §3.1–3.2): a 1 bit, zeros up to 56 mod 64, then the length little-endian.
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        for shift in stride(from: 0, to: 64, by: 8) { padded.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        var words = [UInt32](repeating: 0, count: 16)
        for block in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let b = block + 4 * i
                words[i] = UInt32(padded[b]) | UInt32(padded[b + 1]) << 8
                    | UInt32(padded[b + 2]) << 16 | UInt32(padded[b + 3]) << 24
            }
            compress(&state, words)
        }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for word in [state.0, state.1, state.2, state.3] {
            for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return out
    }

    /// The digest of the UTF-8 bytes of `text`.
    public static func digest(_ text: String) -> [UInt8] { digest(Array(text.utf8)) }

    /// Per-step left rotations (RFC 1321 §3.4), four per round.
    private static let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]

    /// `floor(abs(sin(i + 1)) * 2^32)` for i in 0..<64 (RFC 1321 §3.4's table T).
    private static let sines: [UInt32] = [
        0xD76A_A478, 0xE8C7_B756, 0x2420_70DB, 0xC1BD_CEEE, 0xF57C_0FAF, 0x4787_C62A, 0xA830_4613, 0xFD46_9501,
        0x6980_98D8, 0x8B44_F7AF, 0xFFFF_5BB1, 0x895C_D7BE, 0x6B90_1122, 0xFD98_7193, 0xA679_438E, 0x49B4_0821,
        0xF61E_2562, 0xC040_B340, 0x265E_5A51, 0xE9B6_C7AA, 0xD62F_105D, 0x0244_1453, 0xD8A1_E681, 0xE7D3_FBC8,
        0x21E1_CDE6, 0xC337_07D6, 0xF4D5_0D87, 0x455A_14ED, 0xA9E3_E905, 0xFCEF_A3F8, 0x676F_02D9, 0x8D2A_4C8A,
        0xFFFA_3942, 0x8771_F681, 0x6D9D_6122, 0xFDE5_380C, 0xA4BE_EA44, 0x4BDE_CFA9, 0xF6BB_4B60, 0xBEBF_BC70,
        0x289B_7EC6, 0xEAA1_27FA, 0xD4EF_3085, 0x0488_1D05, 0xD9D4_D039, 0xE6DB_99E5, 0x1FA2_7CF8, 0xC4AC_5665,
        0xF429_2244, 0x432A_FF97, 0xAB94_23A7, 0xFC93_A039, 0x655B_59C3, 0x8F0C_CC92, 0xFFEF_F47D, 0x8584_5DD1,
        0x6FA8_7E4F, 0xFE2C_E6E0, 0xA301_4314, 0x4E08_11A1, 0xF753_7E82, 0xBD3A_F235, 0x2AD7_D2BB, 0xEB86_D391,
    ]

    /// One 64-byte block (RFC 1321 §3.4): four rounds of sixteen steps.
    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32), _ x: [UInt32]) {
        var (a, b, c, d) = state
        for i in 0..<64 {
            let f: UInt32
            let k: Int
            switch i / 16 {
            case 0: f = (b & c) | (~b & d); k = i
            case 1: f = (b & d) | (c & ~d); k = (5 * i + 1) % 16
            case 2: f = b ^ c ^ d; k = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); k = (7 * i) % 16
            }
            let sum = a &+ f &+ sines[i] &+ x[k]
            let s = shifts[(i / 16) * 4 + i % 4]
            (a, d, c) = (d, c, b)
            b = b &+ ((sum << s) | (sum >> (32 - s)))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
