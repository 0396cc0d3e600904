/* GET /api/{v1,v2}/health: 200 while the process runs. */
#include <json-c/json.h>
#include <time.h>

#include "api.h"

void api_health(struct api_call *call)
{
	struct json_object *o = json_object_new_object();
	time_t t = time(NULL);

	if (call->version == 1) {
		/* v1 shape: flat, Unix seconds */
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "time", json_object_new_int64((int64_t)t));
	} else {
		json_object_object_add(o, "status", json_object_new_string("ok"));
		json_object_object_add(o, "time", api_json_time(t));
	}
	api_json(call, 200, o);
}
