import ProtocolCore

/// The znode tree and its watches: what the server does with one request (ZooKeeper 3.8's
/// `PrepRequestProcessor` checks and `DataTree` effects, in the same order).
extension SimZooKeeper {
    /// ZBADARGUMENTS, for a malformed path.
    static let badArguments = CoordinationError.other(code: -8, message: "bad arguments")
    /// ZNOCHILDRENFOREPHEMERALS: an ephemeral node cannot have children.
    static let noChildrenForEphemerals = CoordinationError.other(code: -108, message: "no children for ephemerals")

    /// Applies `request` for the session `owner`: the reply, and the watch the request armed.
    func apply(_ request: CoordinationRequest, owner: Int64) -> (CoordinationReply, WatchKey?) {
        switch request {
        case .create(let path, let data, let mode):
            return (create(path, data: data, mode: mode, owner: owner), nil)
        case .delete(let path):
            return (delete(path), nil)
        case .setData(let path, let data):
            return (setData(path, data, expecting: nil), nil)
        case .setDataAtVersion(let path, let data, let version):
            return (setData(path, data, expecting: version), nil)
        case .getVersionedData(let path, let watch):
            guard Self.isValid(path) else { return (.failed(Self.badArguments), nil) }
            guard let node = nodes[path] else { return (.failed(.noNode), nil) }
            return (.versionedData(node.data, version: node.version), watch ? arm(.data, path, for: owner) : nil)
        case .getData(let path, let watch):
            guard Self.isValid(path) else { return (.failed(Self.badArguments), nil) }
            // A read of a missing node fails before arming anything.
            guard let node = nodes[path] else { return (.failed(.noNode), nil) }
            return (.data(node.data), watch ? arm(.data, path, for: owner) : nil)
        case .getChildren(let path, let watch):
            guard Self.isValid(path) else { return (.failed(Self.badArguments), nil) }
            guard let node = nodes[path] else { return (.failed(.noNode), nil) }
            return (.children(node.children), watch ? arm(.children, path, for: owner) : nil)
        case .exists(let path, let watch):
            guard Self.isValid(path) else { return (.failed(Self.badArguments), nil) }
            // Armed even when the node is missing: that watch fires `.created`.
            return (.exists(nodes[path] != nil), watch ? arm(.data, path, for: owner) : nil)
        }
    }

    private func create(_ path: String, data: [UInt8]?, mode: CreateMode, owner: Int64) -> CoordinationReply {
        // A sequential create names a prefix (`/q/n-`, or `/q/` for bare numbers): validate the
        // name as it will be once the counter is appended.
        guard Self.isValid(mode.isSequential ? path + "0" : path) else { return .failed(Self.badArguments) }
        let parentPath = Self.parent(of: path)
        guard var parent = nodes[parentPath] else { return .failed(.noNode) }
        let fullPath = mode.isSequential ? path + Self.sequenceSuffix(parent.childrenCreated) : path
        guard nodes[fullPath] == nil else { return .failed(.nodeExists) }
        guard parent.ephemeralOwner == nil else { return .failed(Self.noChildrenForEphemerals) }
        parent.children.append(Self.name(of: fullPath))
        parent.childrenCreated += 1
        nodes[parentPath] = parent
        nodes[fullPath] = ZNode(data: data, ephemeralOwner: mode.isEphemeral ? owner : nil)
        fire(.created(path: fullPath))
        fire(.childrenChanged(path: parentPath))
        return .created(path: fullPath)
    }

    private func delete(_ path: String) -> CoordinationReply {
        guard Self.isValid(path), path != "/" else { return .failed(Self.badArguments) }
        guard let node = nodes[path] else { return .failed(.noNode) }
        guard node.children.isEmpty else { return .failed(.notEmpty) }
        remove(path)
        return .deleted
    }

    /// With `expecting`, only when the node's version is that one (ZBADVERSION otherwise).
    private func setData(_ path: String, _ data: [UInt8], expecting: Int32?) -> CoordinationReply {
        guard Self.isValid(path) else { return .failed(Self.badArguments) }
        guard let node = nodes[path] else { return .failed(.noNode) }
        if let expecting, node.version != expecting { return .failed(.badVersion) }
        nodes[path]!.data = data
        nodes[path]!.version &+= 1
        fire(.dataChanged(path: path))
        return .dataSet
    }

    /// Removes the childless node `path` and fires its watches and its parent's (a delete, or an
    /// ephemeral going with its session).
    func remove(_ path: String) {
        precondition(nodes[path]?.children.isEmpty == true, "only a childless node can be removed")
        nodes[path] = nil
        let parentPath = Self.parent(of: path)
        let name = Self.name(of: path)
        nodes[parentPath]?.children.removeAll { $0 == name }
        fire(.deleted(path: path))
        fire(.childrenChanged(path: parentPath))
    }

    // MARK: Watches

    private func arm(_ kind: WatchKey.Kind, _ path: String, for session: Int64) -> WatchKey {
        let key = WatchKey(path: path, kind: kind)
        // A set: arming the same watch twice still fires it once.
        watches[key, default: []].insert(session)
        return key
    }

    /// Disarms every watch `event` fires and tells their sessions, in session id order so that
    /// the simulator's queue sees the same order every run.
    private func fire(_ event: WatchEvent) {
        var sessions = Set<Int64>()
        for key in event.watchKeys {
            if let waiting = watches.removeValue(forKey: key) { sessions.formUnion(waiting) }
        }
        for id in sessions.sorted() {
            guard let slot = liveSessions[id] else { continue }
            switch clients[slot].status {
            case .connected:
                enqueue(.watch(event), to: slot)
            case .disconnected:
                // Told once the client is back: it re-arms the watch and the server sees the change.
                clients[slot].held.append(event)
            case .expiredWhileDisconnected, .expired, .closed:
                // Not alive at the server: its watches went with it.
                break
            }
        }
    }

    /// Disarms the watches of `session`, except `kept`.
    func disarmWatches(of session: Int64, keeping kept: Set<WatchKey> = []) {
        for key in Array(watches.keys) where !kept.contains(key) {
            watches[key]?.remove(session)
            if watches[key]?.isEmpty == true { watches[key] = nil }
        }
    }

    // MARK: Paths

    /// ZooKeeper's path rules: absolute, no empty, `.` or `..` component, no trailing slash but
    /// on `/`, no NUL.
    static func isValid(_ path: String) -> Bool {
        // One pass over the bytes (every request checks its path; splitting is costly in debug builds).
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var componentLength = -1  // -1 before the leading slash
        var dotsOnly = true
        for byte in path.utf8 {
            if byte == 0 { return false }
            if byte == slash {
                if componentLength == 0 || (dotsOnly && componentLength <= 2 && componentLength > 0) { return false }
                componentLength = 0
                dotsOnly = true
            } else {
                if componentLength < 0 { return false }
                componentLength += 1
                if byte != dot { dotsOnly = false }
            }
        }
        if componentLength < 0 { return false }  // empty
        if componentLength == 0 { return path.utf8.count == 1 }  // trailing slash: only `/` itself
        return !(dotsOnly && componentLength <= 2)
    }

    /// `/a/b` → `/a`, `/a` → `/`.
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The 10-digit, zero-padded counter of a sequential node (`%010d`).
    static func sequenceSuffix(_ counter: Int) -> String {
        let digits = String(counter)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }
}
