/*
 * devices.h - the devices service (xws-devices): the `devices` resource (spec §5.2, path
 * pbx_settings/devices), the phone inventory. See README.md beside this file for the acts, the
 * Redis keys and the attachment of lines.
 *
 * device_table.c declares the record (its fields, the generated deviceid) and its indexes (mac
 * unique and normalised, ip an exact lookup, deviceid unique); devices.c holds the handlers;
 * lua/devices.lua the Redis functions.
 */
#ifndef DEVICES_H
#define DEVICES_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A stored device: a msgpack map of the device fields (svc_record_pack_stored). */
extern const svc_table_t devices_table;
/* The records with their indexes, in this order: mac (unique), ip (lookup), deviceid (unique). */
extern const svc_records_t devices_records;
enum { DEVICES_IX_MAC = 0, DEVICES_IX_IP = 1, DEVICES_IX_DEVICEID = 2 };

/* 1 when s is a deviceid as the contract writes it: 32 hex digits (any case). */
int devices_is_deviceid(const char *s);

/* The resource as registered in the service's resource table (default act: list). */
extern const svc_resource_t devices_resource;
/* The function library (prelude + lua/devices.lua), embedded at build time. */
extern const char devices_lua[];

#ifdef __cplusplus
}
#endif
#endif
