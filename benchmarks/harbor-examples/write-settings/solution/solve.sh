#!/bin/bash
set -e
mkdir -p /app/config
printf '[server]\nhost = 127.0.0.1\nport = 8080\n\n[logging]\nlevel = info\n' > /app/config/settings.ini
