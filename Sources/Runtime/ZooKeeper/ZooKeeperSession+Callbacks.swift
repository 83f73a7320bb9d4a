import CZooKeeper
import Logging
import ProtocolCore

// The C library calls these from its completion thread. They are global functions, not
// closures, so that no actor isolation is attached to them (toolchain.md §1: a main-actor
// closure called from a C thread crashed).

func zooKeeperWatcher(_ zh: OpaquePointer?, _ type: Int32, _ state: Int32,
                      _ path: UnsafePointer<CChar>?, _ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    let handle = Unmanaged<HandleContext>.fromOpaque(context).takeUnretainedValue()
    if type == ZOO_SESSION_EVENT {
        handle.session.sessionChanged(to: state, handle: handle, zh: zh)
    } else if let path, let event = ZooKeeperCodes.watchEvent(type: type, path: String(cString: path)) {
        handle.session.watchFired(event, generation: handle.generation)
    }
}

func zooKeeperCreated(_ rc: Int32, _ value: UnsafePointer<CChar>?, _ data: UnsafeRawPointer?) {
    complete(data, rc == ZOK.rawValue ? .created(path: value.map { String(cString: $0) } ?? "") : failure(rc))
}

func zooKeeperDeleted(_ rc: Int32, _ data: UnsafeRawPointer?) {
    complete(data, rc == ZOK.rawValue ? .deleted : failure(rc))
}

func zooKeeperDataSet(_ rc: Int32, _ stat: UnsafePointer<Stat>?, _ data: UnsafeRawPointer?) {
    complete(data, rc == ZOK.rawValue ? .dataSet : failure(rc))
}

func zooKeeperExists(_ rc: Int32, _ stat: UnsafePointer<Stat>?, _ data: UnsafeRawPointer?) {
    switch rc {
    case ZOK.rawValue: complete(data, .exists(true))
    case ZNONODE.rawValue: complete(data, .exists(false))
    default: complete(data, failure(rc))
    }
}

func zooKeeperData(_ rc: Int32, _ value: UnsafePointer<CChar>?, _ length: Int32,
                   _ stat: UnsafePointer<Stat>?, _ data: UnsafeRawPointer?) {
    guard rc == ZOK.rawValue else { return complete(data, failure(rc)) }
    // A node created with no data (null) answers with length -1 and no buffer; empty data has
    // length 0.
    guard length >= 0 else { return complete(data, .data(nil)) }
    guard let value, length > 0 else { return complete(data, .data([])) }
    complete(data, .data(Array(UnsafeRawBufferPointer(start: value, count: Int(length)))))
}

/// `zoo_aget` for `getVersionedData`: the data with `Stat.version`.
func zooKeeperVersionedData(_ rc: Int32, _ value: UnsafePointer<CChar>?, _ length: Int32,
                            _ stat: UnsafePointer<Stat>?, _ data: UnsafeRawPointer?) {
    guard rc == ZOK.rawValue else { return complete(data, failure(rc)) }
    let version = stat?.pointee.version ?? 0
    guard length >= 0 else { return complete(data, .versionedData(nil, version: version)) }
    guard let value, length > 0 else { return complete(data, .versionedData([], version: version)) }
    complete(data, .versionedData(Array(UnsafeRawBufferPointer(start: value, count: Int(length))), version: version))
}

func zooKeeperChildren(_ rc: Int32, _ strings: UnsafePointer<String_vector>?, _ data: UnsafeRawPointer?) {
    guard rc == ZOK.rawValue else { return complete(data, failure(rc)) }
    var names: [String] = []
    if let vector = strings?.pointee, let items = vector.data {
        names.reserveCapacity(Int(vector.count))
        for index in 0..<Int(vector.count) {
            if let name = items[index] { names.append(String(cString: name)) }
        }
    }
    complete(data, .children(names))
}

private func failure(_ rc: Int32) -> CoordinationReply {
    .failed(ZooKeeperCodes.error(rc))
}

private func complete(_ data: UnsafeRawPointer?, _ reply: CoordinationReply) {
    guard let data else { return }
    let request = Unmanaged<RequestContext>.fromOpaque(data).takeUnretainedValue()
    request.session.finish(request, reply)
}

extension ZooKeeperSession {
    /// Hands `request` to the C library's asynchronous API; the C return code.
    static func issue(_ request: CoordinationRequest, on zh: OpaquePointer, context: UnsafeRawPointer) -> Int32 {
        switch request {
        case .create(let path, nil, let mode):
            // The C client's way to say "no data": length -1 (empty data is length 0).
            return zoo_acreate(zh, path, nil, -1, metaq_zk_open_acl_unsafe(), ZooKeeperCodes.flags(mode),
                               zooKeeperCreated, context)
        case .create(let path, let data?, let mode):
            return data.withUnsafeBytes { bytes in
                zoo_acreate(zh, path, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                            metaq_zk_open_acl_unsafe(), ZooKeeperCodes.flags(mode), zooKeeperCreated, context)
            }
        case .delete(let path):
            return zoo_adelete(zh, path, -1, zooKeeperDeleted, context)
        case .setData(let path, let data):
            return data.withUnsafeBytes { bytes in
                zoo_aset(zh, path, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                         -1, zooKeeperDataSet, context)
            }
        case .getData(let path, let watch):
            return zoo_aget(zh, path, watch ? 1 : 0, zooKeeperData, context)
        case .getVersionedData(let path, let watch):
            return zoo_aget(zh, path, watch ? 1 : 0, zooKeeperVersionedData, context)
        case .setDataAtVersion(let path, let data, let version):
            return data.withUnsafeBytes { bytes in
                zoo_aset(zh, path, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                         version, zooKeeperDataSet, context)
            }
        case .getChildren(let path, let watch):
            return zoo_aget_children(zh, path, watch ? 1 : 0, zooKeeperChildren, context)
        case .exists(let path, let watch):
            return zoo_aexists(zh, path, watch ? 1 : 0, zooKeeperExists, context)
        }
    }

    /// The completion of request `request`.
    func finish(_ request: RequestContext, _ reply: CoordinationReply) {
        let effects = core.withLock { core -> Effects in
            guard core.inFlight.removeValue(forKey: request.sequence) != nil else { return Effects() }
            return core.resolve(request.sequence, reply)
        }
        settle(effects)
    }

    func watchFired(_ event: WatchEvent, generation: UInt64) {
        let effects = core.withLock { core -> Effects in
            guard core.generation == generation else { return Effects() }
            return core.emit(.watch(event))
        }
        settle(effects)
    }

    /// A session event of the handle of `handle.generation` (`zh` is that handle).
    func sessionChanged(to state: Int32, handle: HandleContext, zh: OpaquePointer?) {
        switch state {
        case ZOO_CONNECTED_STATE:
            connected(handle: handle, zh: zh)
        case ZOO_CONNECTING_STATE, ZOO_ASSOCIATING_STATE:
            let (effects, sessionId) = core.withLock { core -> (Effects?, Int64) in
                guard core.generation == handle.generation, core.reported == .connected else { return (nil, 0) }
                return (core.report(.connecting), core.sessionId)
            }
            guard let effects else { return }
            logger.info("ZooKeeper connection lost, reconnecting",
                        metadata: ["session": "\(ZooKeeperCodes.hex(sessionId))"])
            settle(effects)
        case ZOO_EXPIRED_SESSION_STATE, ZOO_AUTH_FAILED_STATE:
            expired(handle: handle, authenticationFailed: state == ZOO_AUTH_FAILED_STATE)
        default:
            logger.debug("ZooKeeper session event ignored", metadata: ["state": "\(ZooKeeperCodes.stateName(state))"])
        }
    }

    private func connected(handle: HandleContext, zh: OpaquePointer?) {
        let timeoutMs = zh.map { Int(zoo_recv_timeout($0)) } ?? requestedTimeoutMs
        let sessionId: Int64 = zh.flatMap { zoo_client_id($0)?.pointee.client_id } ?? 0
        let effects = core.withLock { core -> Effects? in
            guard core.generation == handle.generation else { return nil }
            core.negotiatedTimeoutMs = timeoutMs
            core.sessionId = sessionId
            return core.report(.connected)
        }
        guard let effects else { return }
        logger.info("ZooKeeper session connected", metadata: [
            "session": "\(ZooKeeperCodes.hex(sessionId))", "negotiatedTimeoutMs": "\(timeoutMs)",
        ])
        settle(effects)
    }

    private func expired(handle: HandleContext, authenticationFailed: Bool) {
        let (effects, sessionId) = core.withLock { core -> (Effects?, Int64) in
            guard core.generation == handle.generation else { return (nil, 0) }
            core.expiries += 1
            return (core.report(.expired) ?? Effects(), core.sessionId)
        }
        guard let effects else { return }
        let metadata: Logger.Metadata = ["session": "\(ZooKeeperCodes.hex(sessionId))"]
        if authenticationFailed {
            logger.error("ZooKeeper authentication failed; treating the session as expired", metadata: metadata)
        } else {
            logger.info("ZooKeeper session expired, opening a new one", metadata: metadata)
        }
        settle(effects)
        // Not from this thread: zookeeper_close from the completion thread deadlocks.
        control.async { self.renew(expired: handle.generation) }
    }
}
