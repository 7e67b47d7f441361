#!/usr/bin/env python3
"""personal_fields: the table of personal-data fields, from the contract.

Which fields hold personal data is written in the .proto, next to each field,
as a clause of the field's trailing comment:

    string caller_phone = 11;  // <= 20; personal: phone

Clauses are separated by ';'. A clause that starts with the word "personal"
must read "personal: <kind>", with one of the kinds below; anything else is an
error, and so is such a clause on a field that is not a string or in a comment
before the field (where it would otherwise be silently ignored).

protobuf-c keeps no custom field options at run time, so this script reads the
FileDescriptorSet that protoc-c writes with --include_source_info: the
compiler's own parser attaches each comment to its field, gives the message's
full name and the field's number, and this script only reads the clauses. It
writes a C table (message full name, field number, field name, kind) that
common/mask.c walks.

Usage: personal_fields.py DESCRIPTOR_SET OUT_C OUT_H
Exit status 1 with "file:line: message" on stderr when an annotation is wrong.
"""

import os
import re
import sys

# The kinds, in the order of their bits in personal_kind_t.
KINDS = ("phone", "name", "address", "text")

KIND_DOCS = {
    "phone": "a phone number",
    "name": "a person's name",
    "address": "a street address",
    "text": "free text a caller wrote or said",
}

# descriptor.proto field numbers used here.
SET_FILE = 1
FILE_NAME, FILE_PACKAGE, FILE_MESSAGE, FILE_SOURCE_INFO = 1, 2, 4, 9
MESSAGE_NAME, MESSAGE_FIELD, MESSAGE_NESTED = 1, 2, 3
FIELD_NAME, FIELD_NUMBER, FIELD_TYPE = 1, 3, 5
SOURCE_LOCATION = 1
LOCATION_PATH, LOCATION_SPAN, LOCATION_LEADING, LOCATION_TRAILING, LOCATION_DETACHED = 1, 2, 3, 4, 6
TYPE_STRING = 9

CLAUSE = re.compile(r"personal\b")
ANNOTATION = re.compile(r"personal:\s*([a-z]+)")
MISPLACED = re.compile(r"\bpersonal:")


class AnnotationError(Exception):
    pass


# ---- protobuf wire format, the little of it a descriptor set needs --------


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def read_fields(data):
    """Yields (number, value): an int for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire_type == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
        yield number, value


def read_ints(value):
    """A repeated int32: one varint, or a packed run of them."""
    if isinstance(value, int):
        return [value]
    ints, pos = [], 0
    while pos < len(value):
        item, pos = read_varint(value, pos)
        ints.append(item)
    return ints


# ---- the descriptor set ----------------------------------------------------


def read_comments(source_info):
    """Maps a location path (tuple) to (line, leading, trailing)."""
    comments = {}
    for number, value in read_fields(source_info):
        if number != SOURCE_LOCATION:
            continue
        path, line, leading, trailing = [], 0, [], ""
        for item, item_value in read_fields(value):
            if item == LOCATION_PATH:
                path += read_ints(item_value)
            elif item == LOCATION_SPAN:
                line = read_ints(item_value)[0] + 1
            elif item in (LOCATION_LEADING, LOCATION_DETACHED):
                leading.append(item_value.decode())
            elif item == LOCATION_TRAILING:
                trailing = item_value.decode()
        comments[tuple(path)] = (line, leading, trailing)
    return comments


def read_kind(file_name, line, where, trailing):
    """The kind named by the field's trailing comment, or None."""
    kind = None
    for clause in trailing.split(";"):
        clause = clause.strip()
        if not CLAUSE.match(clause):
            continue
        match = ANNOTATION.fullmatch(clause)
        if not match:
            raise AnnotationError(
                f"{file_name}:{line}: {where}: '{clause}' is not an annotation: "
                f"write 'personal: <kind>' with a kind of {', '.join(KINDS)}"
            )
        if match.group(1) not in KINDS:
            raise AnnotationError(
                f"{file_name}:{line}: {where}: unknown personal kind '{match.group(1)}' "
                f"(known: {', '.join(KINDS)})"
            )
        if kind is not None:
            raise AnnotationError(f"{file_name}:{line}: {where}: more than one personal kind")
        kind = match.group(1)
    return kind


def read_message(data, prefix, path, file_name, comments, table):
    fields = list(read_fields(data))
    name = next(v.decode() for n, v in fields if n == MESSAGE_NAME)
    full_name = f"{prefix}.{name}" if prefix else name
    field_index = nested_index = 0
    for number, value in fields:
        if number == MESSAGE_FIELD:
            field_path = path + (MESSAGE_FIELD, field_index)
            field_index += 1
            read_field(value, full_name, field_path, file_name, comments, table)
        elif number == MESSAGE_NESTED:
            read_message(value, full_name, path + (MESSAGE_NESTED, nested_index), file_name,
                         comments, table)
            nested_index += 1


def read_field(data, message, path, file_name, comments, table):
    name, field_number, field_type = "", 0, 0
    for number, value in read_fields(data):
        if number == FIELD_NAME:
            name = value.decode()
        elif number == FIELD_NUMBER:
            field_number = value
        elif number == FIELD_TYPE:
            field_type = value
    line, leading, trailing = comments.get(path, (0, [], ""))
    where = f"{message.split('.')[-1]}.{name}"
    if any(MISPLACED.search(text) for text in leading):
        raise AnnotationError(
            f"{file_name}:{line}: {where}: a personal annotation belongs in the comment after "
            "the field, on its line"
        )
    kind = read_kind(file_name, line, where, trailing)
    if kind is None:
        return
    if field_type != TYPE_STRING:
        raise AnnotationError(
            f"{file_name}:{line}: {where}: only string fields can be marked personal"
        )
    table.append((message, field_number, name, kind))


def read_descriptor_set(data):
    """The .proto files in the set and the table of their personal fields."""
    files, table = [], []
    for number, value in read_fields(data):
        if number != SET_FILE:
            continue
        items = list(read_fields(value))
        file_name = next((v.decode() for n, v in items if n == FILE_NAME), "?")
        files.append(file_name)
        package = next((v.decode() for n, v in items if n == FILE_PACKAGE), "")
        source_info = next((v for n, v in items if n == FILE_SOURCE_INFO), None)
        if source_info is None:
            raise AnnotationError(
                f"{file_name}: the descriptor set has no comments: "
                "make it with protoc-c --include_source_info"
            )
        comments = read_comments(source_info)
        message_index = 0
        for item, item_value in items:
            if item == FILE_MESSAGE:
                read_message(item_value, package, (FILE_MESSAGE, message_index), file_name,
                             comments, table)
                message_index += 1
    return files, table


# ---- output ---------------------------------------------------------------


def write_header(path, sources):
    guard = "DISPATCH_" + re.sub(r"[^A-Z0-9]", "_", os.path.basename(path).upper())
    kinds = "\n".join(
        f"    PERSONAL_{kind.upper()} = 1u << {bit}, /* {KIND_DOCS[kind]} */"
        for bit, kind in enumerate(KINDS)
    )
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"""/* Generated by proto/personal_fields.py from {sources}: do not edit.
 *
 * The fields of the contract that hold personal data: every field whose
 * trailing comment has the clause "personal: <kind>" (DESIGN.md section 6).
 * The table is static and read-only.
 */
#ifndef {guard}
#define {guard}

#include <stddef.h>
#include <stdint.h>

/* Bits: a set of kinds is their OR. */
typedef enum personal_kind {{
{kinds}
}} personal_kind_t;

#define PERSONAL_ALL ((1u << {len(KINDS)}) - 1)

typedef struct personal_field {{
    const char *message; /* full name: ProtobufCMessageDescriptor.name */
    uint32_t number;     /* field number */
    const char *name;    /* field name */
    personal_kind_t kind;
}} personal_field_t;

extern const personal_field_t personal_fields[];
extern const size_t personal_field_count;

#endif
""")


def write_source(path, header, sources, table):
    rows = "".join(
        f'    {{"{message}", {number}, "{name}", PERSONAL_{kind.upper()}}},\n'
        for message, number, name, kind in table
    )
    if not rows:
        rows = '    {"", 0, "", PERSONAL_PHONE}, /* none: keeps the array non-empty */\n'
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"""/* Generated by proto/personal_fields.py from {sources}: do not edit. */
#include "{os.path.basename(header)}"

const personal_field_t personal_fields[] = {{
{rows}}};

const size_t personal_field_count = {len(table)};
""")


def main(argv):
    if len(argv) != 4:
        print("usage: personal_fields.py DESCRIPTOR_SET OUT_C OUT_H", file=sys.stderr)
        return 2
    descriptor_set, out_c, out_h = argv[1:]
    with open(descriptor_set, "rb") as data:
        content = data.read()
    try:
        files, table = read_descriptor_set(content)
    except AnnotationError as error:
        print(f"personal_fields: {error}", file=sys.stderr)
        return 1
    sources = ", ".join(files)
    write_header(out_h, sources)
    write_source(out_c, out_h, sources, table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
