// Read-only views of a SimDisk for tests, checkers and trace fingerprints. None of these touch
// the handles or the durability state.

extension SimDisk {
    /// The bytes of the file at `path` that would survive a power loss now, or nil if no file is there.
    public func durableBytes(_ path: String) -> [UInt8]? {
        guard case .file(let inode)? = node(at: path) else { return nil }
        return inode.durable
    }

    /// The bytes reads of the file at `path` see now, or nil if no file is there.
    public func currentBytes(_ path: String) -> [UInt8]? {
        guard case .file(let inode)? = node(at: path) else { return nil }
        return inode.current
    }

    /// Whether the name `path` is bound in its parent's durable entries (would survive a power
    /// loss as a name). Directories are always durable.
    public func isEntryDurable(_ path: String) -> Bool {
        var names = Self.components(of: path)
        guard let name = names.popLast() else { return true }
        guard case .directory(let parent)? = node(at: Self.path(of: names)),
              let current = parent.current[name] else { return false }
        return SimNode.same(parent.durable[name], current)
    }

    /// Paths of every file (not directory) reachable now, sorted.
    public func filePaths() -> [String] {
        var out: [String] = []
        collectFiles(in: root, at: [], into: &out)
        return out.sorted()
    }

    /// A 64-bit FNV-1a digest of every path, current and durable byte on the disk: two runs of the
    /// same seed must agree on it.
    public func fingerprint() -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
            for byte in bytes {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
        }
        for path in filePaths() {
            guard case .file(let inode)? = node(at: path) else { continue }
            mix(path.utf8)
            // Length prefixes keep e.g. ("ab", "c") and ("a", "bc") from colliding.
            for part in [inode.current, inode.durable] {
                mix(withUnsafeBytes(of: UInt64(part.count).littleEndian) { Array($0) })
                mix(part)
            }
        }
        return hash
    }

    private func collectFiles(in directory: SimDirectory, at names: [String], into out: inout [String]) {
        for (name, node) in directory.current {
            switch node {
            case .file: out.append(Self.path(of: names + [name]))
            case .directory(let child): collectFiles(in: child, at: names + [name], into: &out)
            }
        }
    }
}

extension SimDisk {
    /// The files whose names are durably bound in `directory` (they would survive a power loss
    /// now), with their durable bytes, sorted by name; nil when no directory is there.
    public func durableFiles(in directory: String) -> [(name: String, bytes: [UInt8])]? {
        guard case .directory(let node)? = node(at: directory) else { return nil }
        return node.durable.keys.sorted().compactMap { name in
            guard case .file(let inode)? = node.durable[name] else { return nil }
            return (name, inode.durable)
        }
    }
}
