import DequeModule

/// The memory all connections together may hold for frames whose body has not fully arrived
/// (`maxPartialFrameBytes`, DESIGN.md §8).
///
/// The rule: a connection whose decoder has read a header announcing a body of L bytes reserves L
/// before more of that body is read. A reservation that does not fit waits in line, and its
/// connection is not read meanwhile. A connection holding a reservation is therefore never
/// stopped for the budget: it completes its frame or times out, and either way gives the bytes
/// back, so the line always moves (no deadlock). The line is strictly first come, first served, so a
/// large frame is not starved by small ones arriving after it.
public struct PartialFrameBudget: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// Reserved: read on.
        case granted
        /// In line: stop reading the connection until `release` names it.
        case waiting
    }

    /// The total that reservations stay within (but see `reserve` for a frame larger than it).
    public let capacityBytes: Int
    public private(set) var reservedBytes = 0
    private var reservations: [ConnectionID: Int] = [:]
    /// Reservations waiting, in arrival order, and their sizes.
    private var line = Deque<ConnectionID>()
    private var waitingBytes: [ConnectionID: Int] = [:]

    public init(capacityBytes: Int) {
        precondition(capacityBytes > 0, "a partial-frame budget needs room for something")
        self.capacityBytes = capacityBytes
    }

    /// The bytes `connection` has reserved, nil when it has none.
    public func reservation(of connection: ConnectionID) -> Int? { reservations[connection] }

    public func isWaiting(_ connection: ConnectionID) -> Bool { waitingBytes[connection] != nil }

    /// Connections waiting in line.
    public var waitingCount: Int { line.count }

    /// Reserves `bytes` for the frame `connection` is receiving, or puts it in line. A frame
    /// larger than the whole capacity is granted when nothing else is reserved, so that no frame
    /// can wait forever (the configuration keeps the capacity at least the largest frame).
    ///
    /// - Precondition: `connection` holds no reservation and is not in line (one frame at a time).
    public mutating func reserve(_ bytes: Int, for connection: ConnectionID) -> Outcome {
        precondition(bytes >= 0, "negative reservation")
        precondition(reservations[connection] == nil && waitingBytes[connection] == nil,
                     "\(connection) reserves for a second frame")
        if line.isEmpty && fits(bytes) {
            grant(bytes, to: connection)
            return .granted
        }
        line.append(connection)
        waitingBytes[connection] = bytes
        return .waiting
    }

    /// Gives back `connection`'s reservation, or its place in line (its frame completed or it
    /// closed). Returns the connections whose reservations this let through, in line order: they
    /// may be read again.
    public mutating func release(_ connection: ConnectionID) -> [ConnectionID] {
        if let bytes = reservations.removeValue(forKey: connection) {
            reservedBytes -= bytes
        } else if waitingBytes.removeValue(forKey: connection) != nil {
            line.removeAll { $0 == connection }
        } else {
            return []
        }
        return grantWaiting()
    }

    private func fits(_ bytes: Int) -> Bool {
        reservedBytes == 0 || bytes <= capacityBytes - reservedBytes
    }

    private mutating func grant(_ bytes: Int, to connection: ConnectionID) {
        reservations[connection] = bytes
        reservedBytes += bytes
    }

    /// Grants from the head of the line while the head fits.
    private mutating func grantWaiting() -> [ConnectionID] {
        var granted: [ConnectionID] = []
        while let next = line.first, let bytes = waitingBytes[next], fits(bytes) {
            line.removeFirst()
            waitingBytes[next] = nil
            grant(bytes, to: next)
            granted.append(next)
        }
        return granted
    }
}
