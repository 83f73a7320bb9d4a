import ProtocolCore

/// Where a broker keeps its message-id reservation (`MessageIdGenerator`, reference §2.1/§11.2):
/// `<dataPath>/msgid-reservation`, a `CheckedNumber` of wall-clock milliseconds. Ids issued by a
/// run never carry a timestamp above the reservation it persisted, so a restart that starts above
/// the stored value cannot repeat an id, whatever the clock says.
///
/// Written rarely (once per reservation window), so it is replaced atomically — temporary file,
/// sync, rename, directory sync — rather than in place: a torn write must never lose the floor.
/// The name has no `-<digits>` suffix, so it is never taken for a partition directory's file.
public enum IdReservationFile {
    public static let fileName = "msgid-reservation"

    /// The persisted reservation, or 0 when there is none.
    ///
    /// - Throws: when the file exists but cannot be read back as a reservation: starting from 0
    ///   would risk repeating ids, so the broker must not start (an operator can remove the file
    ///   after checking the clock).
    public static func load(storage: any Storage, dataPath: String) throws(StorageError) -> Int64 {
        let path = StoragePath.join(dataPath, fileName)
        guard storage.fileExists(path) else { return 0 }
        guard let value = CheckedNumber.load(storage: storage, path: path) else {
            throw .io(path: path, detail: "unreadable message-id reservation; remove it only if the clock is known to be past it")
        }
        return value
    }

    /// Persists `reservationMs` durably before returning.
    public static func save(_ reservationMs: Int64, storage: any Storage, dataPath: String) throws(StorageError) {
        try CheckedNumber.save(reservationMs, storage: storage, directory: dataPath, name: fileName)
    }
}
