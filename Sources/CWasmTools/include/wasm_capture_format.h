// The capture format's numbers (docs/capture-format.md), for both of its
// writers: StackCapture's (Swift: `CaptureFormat`) and the crash writer's
// in the signal handler (crash_capture.c). One definition, so they cannot
// drift; CaptureFormatTests parses a capture the C writer wrote.
#ifndef WASM_CAPTURE_FORMAT_H
#define WASM_CAPTURE_FORMAT_H

/// "WUCAP\r\n\x1a" read as a little-endian u64: the file's first 8 bytes.
#define WU_CAPTURE_MAGIC 0x1A0A0D5041435557ULL
/// Major version: readers reject any other.
#define WU_CAPTURE_VERSION_MAJOR 2
/// Newest minor version: 1 adds exception handlers per stack map and the
/// THROW section, 2 handler scopes. A writer writes the lowest that holds
/// its content.
#define WU_CAPTURE_VERSION_MINOR 2

/// Header: magic, u16 major, u16 minor, u32 section count.
#define WU_CAPTURE_HEADER_SIZE 16
/// Section table entry: u32 kind, u32 reserved (0), u32 offset, u32 length.
#define WU_CAPTURE_TABLE_ENTRY_SIZE 16
/// Offsets of the header fields after the magic.
#define WU_CAPTURE_MAJOR_OFFSET 8
#define WU_CAPTURE_MINOR_OFFSET 10
#define WU_CAPTURE_SECTION_COUNT_OFFSET 12

/// Section kinds.
#define WU_CAPTURE_SECTION_ARCHITECTURE 1
#define WU_CAPTURE_SECTION_REGISTERS 2
#define WU_CAPTURE_SECTION_ACTIVATIONS 3
#define WU_CAPTURE_SECTION_STACK 4
#define WU_CAPTURE_SECTION_MODULE 5
#define WU_CAPTURE_SECTION_TRAP 6
#define WU_CAPTURE_SECTION_HOST_FRAMES 7
#define WU_CAPTURE_SECTION_NOTE 8
#define WU_CAPTURE_SECTION_THROWN 9
#define WU_CAPTURE_SECTION_MODULE_DEBUG 10
/// FRAME_LAYOUT: a module's frame layout (which values its frames' slots
/// hold at each call and trap site), for coredumps with values.
#define WU_CAPTURE_SECTION_FRAME_LAYOUT 11

/// ARCH: u8 architecture, u8 word size.
#define WU_CAPTURE_ARCHITECTURE_X86_64 1
#define WU_CAPTURE_ARCHITECTURE_AARCH64 2
#define WU_CAPTURE_WORD_SIZE 8

/// ACTIVATIONS: uleb count, then rows of u8 start kind, u64 start, u64 fp,
/// u64 sp, u64 entry fp.
#define WU_CAPTURE_ACTIVATION_ROW_SIZE 33
#define WU_CAPTURE_START_RETURN_ADDRESS 0
#define WU_CAPTURE_START_PC 1

/// REGISTERS: uleb count, then rows of u8 DWARF number, u64 value; numbers
/// at most this.
#define WU_CAPTURE_MAXIMUM_REGISTER 16

#endif
