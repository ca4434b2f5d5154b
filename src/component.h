/*
 * component.h - the one header a source, transform or sink includes, besides core/ and
 * the protocol it speaks (wire/). Everything a component may call is reachable from here:
 *
 *   config/desc.h        the descriptor: name, schema, callbacks (what a component type is)
 *   config/optcheck.h    config-time checks of conditions, regexes, paths and templates
 *   config/netconf.h     the shared tls / auth / compression option sections
 *   engine/instance.h    the instance API: emit, acknowledge, counters, last error, health
 *   engine/lines.h       the line cutter byte-stream sources share
 *   engine/checkpoint.h  durable read positions for sources that replay
 *   model/              events, batches, fields, JSON, encoders, templates, conditions,
 *                        time formats, regexes, metric events
 *
 * Nothing else of the engine, the config loader or the control plane is a component's
 * business: a component that needs more asks for it to be added here.
 */
#ifndef MARS_COMPONENT_H
#define MARS_COMPONENT_H

#include "config/desc.h"
#include "config/netconf.h"
#include "config/optcheck.h"
#include "engine/checkpoint.h"
#include "engine/instance.h"
#include "engine/lines.h"
#include "model/batch.h"
#include "model/condition.h"
#include "model/encode.h"
#include "model/event.h"
#include "model/fields.h"
#include "model/json.h"
#include "model/metric_event.h"
#include "model/regex.h"
#include "model/template.h"
#include "model/timefmt.h"

#endif
