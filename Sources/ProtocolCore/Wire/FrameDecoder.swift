/// An incremental decoder of MetaQ frames (reference §1.1).
///
/// Feed it bytes in any chunking and call `next()` until it returns nil; it yields the same frames
/// for one byte at a time as for a megabyte of pipelined frames. A partial frame waits for more
/// bytes; a body is taken by its declared length. Memory is bounded: a line longer than
/// `maxLineBytes` or a body longer than `maxBodyBytes` is an error before anything of that size is
/// allocated, and the buffer never holds more than the caller fed and `next()` has not consumed.
/// After an error the stream cannot be re-framed, so every later `next()` throws the same error.
public struct FrameDecoder {
    public struct Limits: Equatable, Sendable {
        public var maxLineBytes: Int
        public var maxBodyBytes: Int
        /// A drained buffer keeps its storage up to this size; a larger one is released. A client
        /// fetching 1 MiB slices keeps it (else it would regrow it for every answer); a broker
        /// with thousands of connections keeps little, so a connection that once sent a large
        /// frame does not hold its size for good.
        public var retainedBufferBytes: Int

        /// 2 MiB bodies match gecko's default read buffer (`notify.remoting.max_read_buffer_size`, §1.5).
        public init(maxLineBytes: Int = 4096, maxBodyBytes: Int = 2 * 1024 * 1024, retainedBufferBytes: Int = 4 << 20) {
            self.maxLineBytes = maxLineBytes
            self.maxBodyBytes = maxBodyBytes
            self.retainedBufferBytes = retainedBufferBytes
        }
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for CR LF resumes, so a long line arriving in pieces is scanned once.
    private var scanIndex = 0
    private var pending: PendingBody?
    private var failure: WireError?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet returned as frames.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// What the decoder holds of a frame that is not complete yet.
    public enum PartialFrame: Equatable, Sendable {
        /// Nothing: it is between frames.
        case none
        /// Part of a command line (at most `maxLineBytes`).
        case line
        /// A header announcing a body of `length` bytes, and not all of the body.
        case body(length: Int)
    }

    /// What is held of an incomplete frame once `next()` returned nil: the runtime bounds the
    /// memory and the time connections may spend in the middle of a frame (DESIGN.md §8).
    public var partialFrame: PartialFrame {
        if let pending { return .body(length: pending.length) }
        return bufferedByteCount > 0 ? .line : .none
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, nil when more bytes are needed.
    public mutating func next() throws(WireError) -> Frame? {
        if let failure { throw failure }
        do {
            let frame = try decodeOne()
            compactIfWorthwhile()
            return frame
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func decodeOne() throws(WireError) -> Frame? {
        if pending == nil {
            guard let line = try takeLine() else { return nil }
            switch try LineParser.parse(line, limits: limits) {
            case .complete(let frame): return frame
            case .needsBody(let header): pending = header
            }
        }
        guard let header = pending, bufferedByteCount >= header.length else { return nil }
        let body = Array(buffer[readIndex..<readIndex + header.length])
        readIndex += header.length
        scanIndex = readIndex
        pending = nil
        return header.frame(with: body)
    }

    /// The bytes of the next line without its CR LF, or nil if it has not fully arrived.
    private mutating func takeLine() throws(WireError) -> ArraySlice<UInt8>? {
        let from = max(scanIndex, readIndex)
        let end = buffer.count
        let crlf: Int? = buffer.withUnsafeBufferPointer { bytes in
            var i = from
            while i + 1 < end {
                if bytes[i] == 0x0D && bytes[i + 1] == 0x0A { return i }
                i += 1
            }
            return nil
        }
        if let i = crlf {
            let line = buffer[readIndex..<i]
            readIndex = i + 2
            scanIndex = readIndex
            return line
        }
        scanIndex = max(readIndex, end - 1)
        if end - readIndex > limits.maxLineBytes {
            throw WireError(.lineTooLong, "no line end within \(limits.maxLineBytes) bytes")
        }
        return nil
    }

    private mutating func compactIfWorthwhile() {
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= limits.retainedBufferBytes)
            readIndex = 0
            scanIndex = 0
        } else if readIndex >= 64 * 1024 && readIndex * 2 >= buffer.count {
            buffer.removeFirst(readIndex)
            scanIndex -= readIndex
            readIndex = 0
        }
    }
}

/// A decoded line that announces a body of `length` bytes.
struct PendingBody {
    enum Kind {
        case put(PutCommand)
        case sync(SyncCommand)
        case result(code: Int32, opaque: Int32)
        case value(opaque: Int32)
    }

    var kind: Kind
    var length: Int

    func frame(with body: [UInt8]) -> Frame {
        switch kind {
        case .put(var c):
            c.body = body
            // Computed here, where the decoder runs (a connection loop in the runtime), so the
            // node's thread only compares it.
            if c.requiresChecksumCheck { c.bodyChecksum = CRC32.metaqChecksum(body) }
            return .put(c)
        case .sync(var c):
            c.body = body
            return .sync(c)
        case .result(let code, let opaque): return .result(ResultResponse(code: code, body: body, opaque: opaque))
        case .value(let opaque): return .value(ValueResponse(body: body, opaque: opaque))
        }
    }
}
