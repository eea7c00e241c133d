// The MariaDB Connector/C client library (Debian: libmariadb-dev).
#include <mysql.h>
