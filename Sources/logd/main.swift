print("logd")
