// Power loss and latent errors. Every random decision walks names and inodes in a sorted order,
// never Dictionary order: Swift seeds its hashing per process, and one seed must replay exactly.

/// The odds `SimDisk.powerLoss(using:)` uses for each unsynced change.
public struct PowerLossPolicy: Sendable, Equatable {
    /// A group of unsynced entry changes (one create, remove, or both names of a rename) survives.
    public var keepEntryProbability: Double
    /// A file whose length changed since its last sync keeps its current length (else its durable one).
    public var keepLengthProbability: Double
    /// An unsynced 512-byte sector reaches the medium intact.
    public var keepSectorProbability: Double
    /// An unsynced sector comes back torn: random bytes except where it still holds synced bytes
    /// that were not rewritten. The rest of the time it reverts to its durable bytes, zeros
    /// beyond the durable length.
    public var garbageSectorProbability: Double

    public init(keepEntryProbability: Double = 0.5, keepLengthProbability: Double = 0.5,
                keepSectorProbability: Double = 0.45, garbageSectorProbability: Double = 0.1) {
        precondition(keepSectorProbability + garbageSectorProbability <= 1, "sector odds exceed 1")
        self.keepEntryProbability = keepEntryProbability
        self.keepLengthProbability = keepLengthProbability
        self.keepSectorProbability = keepSectorProbability
        self.garbageSectorProbability = garbageSectorProbability
    }
}

/// Counts of what `SimDisk`'s fault injection did, for tests and sweep reports.
public struct SimDiskStats: Sendable, Equatable {
    public var powerLosses = 0
    /// Writes failed by `failNextWrite`.
    public var writeFailuresInjected = 0
    public var crashes = 0
    /// Names whose unsynced binding (created, renamed to, removed) survived a power loss.
    public var entriesKept = 0
    /// Names that went back to their durable binding.
    public var entriesReverted = 0
    /// Files reachable before a power loss and gone after it.
    public var filesVanished = 0
    /// Files removed (unsynced) before a power loss and back after it.
    public var filesRevived = 0
    /// Files whose unsynced length survived.
    public var lengthsKept = 0
    /// Files cut or grown back to their durable length.
    public var lengthsReverted = 0
    /// Unsynced sectors that reached the medium intact.
    public var sectorsKept = 0
    /// Unsynced sectors that reverted to their durable bytes (zeros beyond the durable length).
    public var sectorsDropped = 0
    /// Unsynced sectors that came back torn (random bytes where they were unsynced).
    public var sectorsGarbage = 0
    /// Synced sectors overwritten by `corruptSyncedSector`.
    public var sectorsCorrupted = 0
    /// Syncs failed by `failNextSync`.
    public var syncFailuresInjected = 0

    public init() {}
}

/// One name whose current binding differs from its durable one.
private struct EntryChange {
    let directory: SimDirectory
    let name: String
    let current: SimNode?
    let durable: SimNode?
}

extension SimDisk {
    /// Loses power: every handle dies, then each unsynced change is resolved at random by `rng`.
    ///
    /// Entries: changed names are grouped by the files they bind, so a rename is atomic (the file
    /// ends up under the old name or the new one, never both, never neither); each group keeps its
    /// current or its durable bindings. A file no name reaches is gone.
    /// Contents: a surviving file with unsynced changes gets its current or durable length, then
    /// every 512-byte sector inside that length whose current and durable bytes differ is kept,
    /// dropped (durable bytes, zeros past the durable length) or torn (random bytes, sparing
    /// synced bytes that were not rewritten).
    /// Afterwards everything on the disk is durable.
    public func powerLoss(using rng: inout SimRandom) {
        killHandles()
        stats.powerLosses += 1
        let before = Set(reachableInodes().map(\.id))
        resolveEntries(using: &rng)
        let after = reachableInodes()
        let afterIDs = Set(after.map(\.id))
        stats.filesVanished += before.subtracting(afterIDs).count
        stats.filesRevived += afterIDs.subtracting(before).count
        for inode in after where inode.hasUnsyncedChanges {
            resolveContents(of: inode, using: &rng)
        }
    }

    /// Overwrites synced sector `sector` of the file at `path` with random bytes, in both the
    /// durable image and what reads see: bit rot the store must catch by checksum.
    /// The sector must start inside the file's durable length.
    public func corruptSyncedSector(path: String, sector: Int, using rng: inout SimRandom) {
        guard case .file(let inode)? = node(at: path) else {
            preconditionFailure("corruptSyncedSector: no file at \(path)")
        }
        let start = sector * SimInode.sectorSize
        let end = min(start + SimInode.sectorSize, inode.durableLength)
        precondition(sector >= 0 && start < end, "corruptSyncedSector: sector \(sector) is not synced in \(path)")
        let old = inode.durableBytes(in: start..<end)
        var garbage = rng.bytes(end - start)
        // Rot that happens to write the same bytes would make a test that expects damage flaky.
        if garbage == old { garbage[0] ^= 0xFF }
        inode.rot(start..<end, with: garbage)
        stats.sectorsCorrupted += 1
    }

    // MARK: Entries

    private func resolveEntries(using rng: inout SimRandom) {
        let changes = entryChanges()
        var keep = decideGroups(of: changes, using: &rng)
        for (index, change) in changes.enumerated() {
            change.directory.current[change.name] = keep[index] ? change.current : change.durable
        }
        avoidHardLinks(changes, keep: &keep)
        for index in changes.indices {
            if keep[index] { stats.entriesKept += 1 } else { stats.entriesReverted += 1 }
        }
        for directory in allDirectories() {
            directory.durable = directory.current
        }
    }

    /// Every changed name, in path order.
    private func entryChanges() -> [EntryChange] {
        var changes: [EntryChange] = []
        for directory in allDirectories() {
            let names = Set(directory.current.keys).union(directory.durable.keys).sorted()
            for name in names where !SimNode.same(directory.current[name], directory.durable[name]) {
                changes.append(EntryChange(directory: directory, name: name,
                                           current: directory.current[name], durable: directory.durable[name]))
            }
        }
        return changes
    }

    /// One coin per group of changes that bind a common file (union-find over inode ids), tossed
    /// in path order of each group's first name.
    private func decideGroups(of changes: [EntryChange], using rng: inout SimRandom) -> [Bool] {
        var parent = Array(changes.indices)
        func find(_ index: Int) -> Int {
            var index = index
            while parent[index] != index {
                parent[index] = parent[parent[index]]
                index = parent[index]
            }
            return index
        }
        var firstChangeOfInode: [Int: Int] = [:]
        for (index, change) in changes.enumerated() {
            for case .file(let inode)? in [change.current, change.durable] {
                if let other = firstChangeOfInode[inode.id] {
                    parent[find(index)] = find(other)
                } else {
                    firstChangeOfInode[inode.id] = index
                }
            }
        }
        var decision: [Int: Bool] = [:]
        return changes.indices.map { index in
            let group = find(index)
            if let made = decision[group] { return made }
            let made = rng.chance(powerLossPolicy.keepEntryProbability)
            decision[group] = made
            return made
        }
    }

    /// Directories are synced separately, so a file moved between two of them can be durable in
    /// both; reverting the unsynced side would leave it under two names. Such names take their
    /// current binding instead (current bindings never share a file, so this settles).
    private func avoidHardLinks(_ changes: [EntryChange], keep: inout [Bool]) {
        var names: [Int: Int] = [:]
        for inode in boundInodes() { names[inode.id, default: 0] += 1 }
        var settled = false
        while !settled {
            settled = true
            for (index, change) in changes.enumerated() where !keep[index] {
                guard case .file(let inode)? = change.durable, names[inode.id, default: 0] > 1 else { continue }
                keep[index] = true
                change.directory.current[change.name] = change.current
                names[inode.id, default: 0] -= 1
                if case .file(let replacement)? = change.current { names[replacement.id, default: 0] += 1 }
                settled = false
            }
        }
    }

    // MARK: Contents

    private func resolveContents(of inode: SimInode, using rng: inout SimRandom) {
        let currentLength = inode.current.count
        let durableLength = inode.durableLength
        var length = currentLength
        if currentLength != durableLength {
            let keepsLength = rng.chance(powerLossPolicy.keepLengthProbability)
            length = keepsLength ? currentLength : durableLength
            if keepsLength { stats.lengthsKept += 1 } else { stats.lengthsReverted += 1 }
        }
        var result = inode.currentBytes(in: 0..<length)
        for sector in unsyncedSectors(of: inode) where sector * SimInode.sectorSize < length {
            let start = sector * SimInode.sectorSize
            let range = start..<min(start + SimInode.sectorSize, length)
            let current = inode.currentBytes(in: range)
            let durable = inode.durableBytes(in: range)
            guard current != durable else { continue }
            let synced = max(0, min(durableLength, range.upperBound) - range.lowerBound)
            result.replaceSubrange(range, with: chooseSector(current: current, durable: durable,
                                                             syncedPrefix: synced, using: &rng))
        }
        inode.settle(to: result)
    }

    /// Sectors whose durable bytes may differ from the current ones, sorted.
    private func unsyncedSectors(of inode: SimInode) -> [Int] {
        let size = SimInode.sectorSize
        let end = max(inode.current.count, inode.durableLength)
        var sectors = Set(inode.savedSectors.keys)
        sectors.formUnion(stride(from: inode.durableLength / size, to: (end + size - 1) / size, by: 1))
        return sectors.sorted()
    }

    /// Only the bytes of unsynced writes are at risk: a torn sector garbles the bytes that differ
    /// from its durable image (and those past the durable length), never bytes that were synced
    /// and not rewritten since — as FoundationDB's non-durable file corrupts the unsynced write.
    private func chooseSector(current: [UInt8], durable: [UInt8], syncedPrefix: Int,
                              using rng: inout SimRandom) -> [UInt8] {
        let draw = rng.unit()
        if draw < powerLossPolicy.keepSectorProbability {
            stats.sectorsKept += 1
            return current
        }
        if draw < powerLossPolicy.keepSectorProbability + powerLossPolicy.garbageSectorProbability {
            stats.sectorsGarbage += 1
            var torn = rng.bytes(current.count)
            for i in 0..<min(syncedPrefix, durable.count) where current[i] == durable[i] { torn[i] = durable[i] }
            return torn
        }
        stats.sectorsDropped += 1
        return durable
    }

    // MARK: Walking the tree

    /// Every directory reachable from `/`, parents before children, siblings by name.
    func allDirectories() -> [SimDirectory] {
        var out: [SimDirectory] = []
        var stack = [root]
        while let directory = stack.popLast() {
            out.append(directory)
            for name in directory.current.keys.sorted().reversed() {
                if case .directory(let child)? = directory.current[name] { stack.append(child) }
            }
        }
        return out
    }

    /// Every file bound by a current name, once per name, in path order.
    private func boundInodes() -> [SimInode] {
        allDirectories().flatMap { directory in
            directory.current.keys.sorted().compactMap { name -> SimInode? in
                if case .file(let inode)? = directory.current[name] { return inode }
                return nil
            }
        }
    }

    /// Every file reachable by a current name, once, by inode id.
    private func reachableInodes() -> [SimInode] {
        var seen = Set<Int>()
        return boundInodes().filter { seen.insert($0.id).inserted }.sorted { $0.id < $1.id }
    }
}
