import WasmDWARF

extension CaptureFile {
    /// What a capture keeps of a wasm module for source lines offline: its
    /// identity, by which `dump --debug-file`/`--debug-dir` find its debug
    /// file, and its `.debug_*` sections when the capture carries them
    /// (a capture taken with backtrace details on).
    public struct ModuleDebug: Hashable, Sendable {
        public var identity: ModuleIdentity
        /// A wasm binary of the module's `.debug_*` custom sections.
        public var sections: [UInt8]?

        public init(identity: ModuleIdentity, sections: [UInt8]?) {
            self.identity = identity
            self.sections = sections
        }

        static let maximumBuildIDBytes = 1024

        /// MODULE_DEBUG: uleb the module's position among the MODULE
        /// sections, u8 flags (1 build id, 2 external debug info, 4
        /// sections), uleb code start, 32 bytes SHA-256 of the module, then
        /// as flagged: uleb length + build id bytes; string external debug
        /// info; uleb length + a wasm binary of the debug sections.
        func write(to writer: inout ByteWriter, position: Int) {
            writer.writeULEB(UInt64(position))
            let flags: UInt8 = (identity.buildID != nil ? 1 : 0) | (identity.externalDebugInfo != nil ? 2 : 0)
                | (sections != nil ? 4 : 0)
            writer.write(flags)
            writer.writeULEB(UInt64(identity.codeStart))
            writer.write(identity.contentHash)
            if let buildID = identity.buildID {
                writer.writeULEB(UInt64(buildID.count))
                writer.write(buildID)
            }
            if let path = identity.externalDebugInfo { writer.writeString(path) }
            if let sections {
                writer.writeULEB(UInt64(sections.count))
                writer.write(sections)
            }
        }

        static func read(_ reader: inout ByteReader) throws(ByteFormatError) -> (position: Int, debug: ModuleDebug) {
            let position = try reader.readULEB("the module's position", atMost: Int(UInt32.max))
            let flagsOffset = reader.offset
            let flags = try reader.readUInt8("the flags")
            guard flags & ~7 == 0 else { throw reader.error(at: flagsOffset, "flags of at most 1 | 2 | 4, found \(flags)") }
            let codeStart = try reader.readULEB("the code start", atMost: Int(UInt32.max))
            let hash = Array(try reader.readBytes(32, "the module's SHA-256"))
            var buildID: [UInt8]?
            if flags & 1 != 0 {
                let count = try reader.readULEB("the build id's length", atMost: maximumBuildIDBytes)
                buildID = Array(try reader.readBytes(count, "the build id"))
            }
            let path = flags & 2 != 0 ? try reader.readString("the external debug info path") : nil
            var sections: [UInt8]?
            if flags & 4 != 0 {
                let count = try reader.readULEB("the debug sections' length", atMost: reader.remaining)
                let start = reader.offset
                let bytes = Array(try reader.readBytes(count, "the debug sections"))
                do {
                    _ = try WasmSections(parsing: bytes)
                } catch {
                    throw reader.error(at: start + error.offset, "the debug sections as a wasm binary: \(error.expected)")
                }
                sections = bytes
            }
            return (position, ModuleDebug(identity: ModuleIdentity(codeStart: UInt32(codeStart), buildID: buildID, contentHash: hash,
                                                                    externalDebugInfo: path),
                                          sections: sections))
        }
    }
}
