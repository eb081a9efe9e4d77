resource_profile "main" {
  timeout = "169h"
}
